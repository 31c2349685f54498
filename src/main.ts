// Entry point: `bun src/main.ts` or `deno run -A src/main.ts`.
import process from "node:process";
import { loadConfig } from "./config.ts";
import { startServer } from "./server.ts";

const config = loadConfig(process.env);
const server = await startServer(config);
console.log(`durable streams listening on ${server.url}/v1/stream/ (${config.DATABASE_URL ? "postgres" : `pglite in ${config.DATA_DIR}`})`);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    console.log(`${signal}: draining`);
    server.stop().then(
      () => process.exit(0),
      (err) => {
        console.error("shutdown failed", err);
        process.exit(1);
      },
    );
  });
}
