// `npm run bench [-- <scenario>...] [--quick]`: runs the scenarios one at a time (the
// 2 cores are shared by servers, Postgres and load generator) and writes
// bench/results/latest.{json,md} and chart.svg. A quick run writes quick.* instead.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../test/support/spawn-server.ts";
import { chartSvg } from "./lib/chart.ts";
import { machineInfo, openFilesLimit } from "./lib/machine.ts";
import { ensureDatabase } from "./lib/pg.ts";
import { markdown, type RunReport } from "./lib/report.ts";
import type { Ctx, Scenario } from "./lib/scenario.ts";
import { stopAll } from "./lib/targets.ts";
import { appendScenario } from "./scenarios/append.ts";
import { hotScenario } from "./scenarios/hot.ts";
import { readScenario } from "./scenarios/read.ts";
import { fanoutScenario } from "./scenarios/fanout.ts";
import { idleScenario } from "./scenarios/idle.ts";
import { scaleScenario } from "./scenarios/scale.ts";
import { subscriptionsScenario } from "./scenarios/subscriptions.ts";
import { workersScenario } from "./scenarios/workers.ts";
import { coldStartScenario } from "./scenarios/coldstart.ts";

const SCENARIOS: Scenario[] = [appendScenario, hotScenario, readScenario, fanoutScenario, idleScenario, scaleScenario, workersScenario, subscriptionsScenario, coldStartScenario];
const RESULTS = join(ROOT, "bench/results");
/** The idle scenario holds 10,000 sockets in one process (client and server alike). */
const NEEDED_FDS = 12_000;

function usage(): never {
  console.error(`usage: npm run bench -- [${SCENARIOS.map((s) => s.id).join("|")}...] [--quick]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const wanted = args.filter((a) => !a.startsWith("--"));
if (args.some((a) => a.startsWith("--") && a !== "--quick")) usage();
for (const id of wanted) if (!SCENARIOS.some((s) => s.id === id)) usage();
const selected = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.id)) : SCENARIOS;

// Child processes inherit our descriptor limit: raise it by re-running under `ulimit -n`
// (a process cannot raise its own soft limit from JavaScript).
const fds = openFilesLimit();
if (fds.soft < NEEDED_FDS && fds.hard > fds.soft && !process.env.BENCH_ULIMIT_RAISED) {
  const limit = Number.isFinite(fds.hard) ? Math.min(fds.hard, 65_536) : 65_536;
  const r = spawnSync("sh", ["-c", `ulimit -n ${limit} && exec "$@"`, "sh", process.execPath, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_ULIMIT_RAISED: "1" },
  });
  process.exit(r.status ?? 1);
}

for (const tool of [process.env.WRK_BIN ?? "wrk", process.env.PGBENCH_BIN ?? "pgbench", process.env.NGINX_BIN ?? "/usr/sbin/nginx", "node"]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
    console.error(`${tool} not found: apt-get install -y wrk nginx-light postgresql-client`);
    process.exit(1);
  }
}

const started = Date.now();
const log = (m: string) => console.error(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${m}`);
const ctx: Ctx = { quick, runId: `r${Date.now().toString(36)}`, log };

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping servers`);
    stopAll().finally(() => process.exit(130));
  });
}

await ensureDatabase();
// A run restricted to some columns (BENCH_COLUMNS) is a partial run: it writes partial.*
// and leaves the full results alone.
const partial = Boolean(process.env.BENCH_COLUMNS);
const name = quick ? "quick" : partial ? "partial" : "latest";
const jsonPath = join(RESULTS, `${name}.json`);
const previous: RunReport | undefined = !quick && !partial && existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, "utf8")) : undefined;
const report: RunReport = {
  date: new Date().toISOString(),
  quick,
  machine: await machineInfo(),
  scenarios: { ...previous?.scenarios },
  failures: {},
};
if (fds.soft < NEEDED_FDS) log(`warning: only ${fds.soft} open files allowed; the idle scenario needs ${NEEDED_FDS}`);

function save() {
  mkdirSync(RESULTS, { recursive: true });
  const chart = name === "latest" ? "chart.svg" : `${name}-chart.svg`;
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${name}.md`), markdown(report, chart));
  writeFileSync(join(RESULTS, chart), chartSvg(report));
}

for (const scenario of selected) {
  log(`scenario ${scenario.id}: ${scenario.title}`);
  try {
    report.scenarios[scenario.id] = await scenario.run(ctx);
  } catch (err) {
    log(`scenario ${scenario.id} failed: ${(err as Error).stack ?? err}`);
    report.failures[scenario.id] = String((err as Error).message ?? err);
    await stopAll();
  }
  save();
}
log(`done in ${((Date.now() - started) / 1000).toFixed(0)}s: ${join("bench/results", `${name}.md`)}`);
process.exit(Object.keys(report.failures).length ? 1 : 0);
