// Runs the official conformance suite through nginx (round robin, no stickiness) in
// front of N instances sharing one Postgres: `bun scripts/conformance-lb.ts [N]`.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { startCluster } from "../test/support/cluster.ts";
import { ROOT } from "../test/support/spawn-server.ts";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is required: instances share one Postgres");
  process.exit(2);
}
const count = Number(process.argv[2] ?? 3);
const cluster = await startCluster({
  databaseUrl,
  schema: `conf_lb_${Date.now().toString(36)}`,
  count,
  runtime: (process.env.CONFORMANCE_RUNTIME as "bun" | "deno") ?? "bun",
  loadBalancer: true,
  warmUp: true,
  env: { LONG_POLL_TIMEOUT_MS: "1000", WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" },
});
console.log(`conformance through nginx ${cluster.lb!.url} over ${count} instances`);
const run = spawnSync(join(ROOT, "node_modules/.bin/vitest"), ["run", "--config", "test/conformance/vitest.config.ts"], {
  cwd: ROOT,
  stdio: "inherit",
  env: { ...process.env, CONFORMANCE_URL: cluster.lb!.url },
});
await cluster.stop();
process.exit(run.status ?? 1);
