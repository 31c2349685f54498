// Entry point: `bun src/main.ts` or `deno run -A src/main.ts`.
import process from "node:process";
import { loadConfig } from "./settings.ts";
import { configureLogging, log } from "./observability/log.ts";
import { hideSecretsIn } from "./observability/redact.ts";
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

// Under `config`, pino redacts each setting by the rule in observability/redact.ts.
log.info({ config, worker: workerIndex(process.env) }, "starting");
const server = await startServer(config).catch((err) => {
  // An unsafe or unreadable auth set-up is a message for the operator, not a stack trace.
  // Anything else (a malformed DATABASE_URL, an unreachable database) is logged with its
  // fields, but through the redaction rule: the runtime's own report of an uncaught error
  // would print the URL, password included.
  const message = hideSecretsIn(err instanceof Error ? err.message : String(err));
  if (err instanceof RefusedToStart) log.fatal(`not starting: ${message}`);
  else log.fatal({ err }, `not starting: ${message}`);
  console.error(`not starting: ${message}`);
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
