// Entry point: `bun src/main.ts` or `deno run -A src/main.ts`.
import process from "node:process";
import { loadConfig } from "./config.ts";
import { configureLogging, log, loggableConfig } from "./observability/log.ts";
import { startServer } from "./server.ts";
import { RefusedToStart } from "./auth/guard.ts";
import { supervise, workerIndex } from "./runtime/workers.ts";

const config = loadConfig(process.env);
configureLogging(config);

if (config.WORKERS > 1 && workerIndex(process.env) === undefined) {
  // This process only supervises WORKERS copies of itself on one port (runtime/workers.ts).
  const why = !config.DATABASE_URL
    ? "WORKERS > 1 needs DATABASE_URL: the embedded PGlite belongs to one process"
    : config.PORT === 0
      ? "WORKERS > 1 needs a fixed PORT: with 0 every worker would get a port of its own"
      : undefined;
  if (why) {
    log.fatal(`not starting: ${why}`);
    console.error(`not starting: ${why}`);
    process.exit(1);
  }
  process.exit(await supervise({ count: config.WORKERS, log: (msg, fields) => log.info(fields ?? {}, msg) }));
}

log.info({ config: loggableConfig(config), worker: workerIndex(process.env) }, "starting");
const server = await startServer(config).catch((err) => {
  // An unsafe or unreadable auth set-up is a message for the operator, not a stack trace.
  if (!(err instanceof RefusedToStart)) throw err;
  log.fatal(`not starting: ${err.message}`);
  console.error(`not starting: ${err.message}`);
  process.exit(1);
});
log.info(
  { url: `${server.url}/v1/stream/`, database: config.DATABASE_URL ? "postgres" : `pglite in ${config.DATA_DIR}`, metricsPort: server.metricsPort },
  "durable streams listening",
);

// SIGHUP re-reads the token file; connections and live reads carry on.
process.on("SIGHUP", () => {
  try {
    console.log(`SIGHUP: ${server.reloadAuth()}`);
  } catch (err) {
    console.error(`SIGHUP: kept the previous tokens: ${(err as Error).message}`);
  }
});

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
