// Entry point: `bun src/main.ts` or `deno run -A src/main.ts`.
import process from "node:process";
import { loadConfig } from "./config.ts";
import { startServer } from "./server.ts";
import { RefusedToStart } from "./auth/guard.ts";

const config = loadConfig(process.env);
const server = await startServer(config).catch((err) => {
  // An unsafe or unreadable auth set-up is a message for the operator, not a stack trace.
  if (!(err instanceof RefusedToStart)) throw err;
  console.error(`not starting: ${err.message}`);
  process.exit(1);
});
console.log(`durable streams listening on ${server.url}/v1/stream/ (${config.DATABASE_URL ? "postgres" : `pglite in ${config.DATA_DIR}`})`);

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
