// Runs the official conformance suite against instances whose pool goes through PgBouncer
// in transaction mode (deploy/pgbouncer.ini, on private port 5449) in front of the shared
// Postgres, with the LISTEN connections straight to Postgres and prepared statements off:
// `bun scripts/conformance-pgbouncer.ts [N]` (N instances behind nginx when N > 1).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { startCluster } from "../test/support/cluster.ts";
import { startPgBouncer } from "../test/support/pgbouncer.ts";
import { ROOT } from "../test/support/spawn-server.ts";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is required: PgBouncer pools connections to that Postgres");
  process.exit(2);
}
const count = Number(process.argv[2] ?? 1);
const schema = `conf_pgb_${Date.now().toString(36)}`;
const bouncer = await startPgBouncer({ port: Number(process.env.PGBOUNCER_PORT ?? 5449), upstream: databaseUrl, schema });
let status = 1;
try {
  const cluster = await startCluster({
    databaseUrl: bouncer.url,
    schema,
    count,
    runtime: (process.env.CONFORMANCE_RUNTIME as "bun" | "deno") ?? "bun",
    loadBalancer: count > 1,
    warmUp: true,
    env: { LONG_POLL_TIMEOUT_MS: "1000", LISTEN_DATABASE_URL: databaseUrl, DATABASE_PREPARE: "false", WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" },
  });
  try {
    const url = cluster.lb?.url ?? cluster.instances[0].url;
    console.log(`conformance through PgBouncer 127.0.0.1:${bouncer.port} (transaction mode), ${count} instance(s) at ${url}`);
    const run = spawnSync(join(ROOT, "node_modules/.bin/vitest"), ["run", "--config", "test/conformance/vitest.config.ts"], {
      cwd: ROOT,
      stdio: "inherit",
      env: { ...process.env, CONFORMANCE_URL: url },
    });
    status = run.status ?? 1;
  } finally {
    await cluster.stop();
  }
} finally {
  await bouncer.stop();
  const drop = spawnSync("psql", [databaseUrl, "-qc", `DROP SCHEMA IF EXISTS "${schema}" CASCADE`], { encoding: "utf8" });
  if (drop.status !== 0) console.error(`dropping ${schema}: ${drop.stderr}`);
}
process.exit(status);
