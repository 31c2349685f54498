// Entry point: `bun src/main.ts` or `deno run -A src/main.ts`.
import process from "node:process";
import { loadConfig } from "./config.ts";
import { configureLogging, log, loggableConfig } from "./observability/log.ts";
import { startServer } from "./server.ts";

const config = loadConfig(process.env);
configureLogging(config);
log.info({ config: loggableConfig(config) }, "starting");
const server = await startServer(config);
log.info(
  { url: `${server.url}/v1/stream/`, database: config.DATABASE_URL ? "postgres" : `pglite in ${config.DATA_DIR}`, metricsPort: server.metricsPort },
  "durable streams listening",
);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    log.info({ signal }, "draining");
    server.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
