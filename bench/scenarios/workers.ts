// 8. WORKERS: one server process against two on the same port (SO_REUSEPORT, the
// supervisor in src/runtime/workers.ts), on the append workloads of `append` and `hot`.
// CPU counts every process of the server (supervisor and workers).
import { childPids, spawnServer } from "../../test/support/spawn-server.ts";
import { createStream, createStreams } from "../lib/http.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { databaseUrl, dropSchema } from "../lib/pg.ts";
import { type MetricRow, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, seconds, valueOf } from "../lib/scenario.ts";
import type { Target } from "../lib/targets.ts";
import { errorCount } from "../lib/wrk.ts";

const STREAMS = 1000;
const CONNECTIONS = 64;
const BODY_BYTES = 100;

async function startWorkers(count: number, schema: string): Promise<Target> {
  await dropSchema(schema);
  const s = await spawnServer({ databaseUrl: databaseUrl(), schema, env: { WORKERS: String(count) }, quiet: true, warmUp: true });
  // The supervisor answers /healthz only through a worker; wait for all of them.
  const deadline = Date.now() + 30_000;
  let pids = childPids(s.proc.pid!);
  while (count > 1 && pids.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pids = childPids(s.proc.pid!);
  }
  if (count > 1) await new Promise((r) => setTimeout(r, 1000)); // every worker listening
  return {
    kind: "ours-1",
    url: s.url,
    instanceUrls: [s.url],
    pids: [s.proc.pid!, ...(count > 1 ? pids : [])],
    exited: () => (s.proc.exitCode !== null ? `exited with ${s.proc.exitCode}` : undefined),
    stop: () => s.stop(),
  };
}

export const workersScenario: Scenario = {
  id: "workers",
  title: "One process vs WORKERS=2 on one port (64 connections, 100 B appends)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const duration = seconds(ctx, 12, 3);
    const warmup = seconds(ctx, 2, 1);
    const spread: MetricRow = { metric: "Appends over 1,000 streams", unit: "appends/s", cells: {}, extraLabel: "WORKERS=2" };
    const hot: MetricRow = { metric: "Appends to one hot stream", unit: "appends/s", cells: {}, extraLabel: "WORKERS=2" };
    const notes: string[] = [
      "ours, 1 instance = one process; other = WORKERS=2 (a supervisor and two workers sharing the port); CPU counts all of their processes",
    ];
    const lineup: Lineup[] = [
      { column: "ours-1", start: () => startWorkers(1, "bench_workers_1") },
      { column: "extra", start: () => startWorkers(2, "bench_workers_2") },
    ];
    await eachTarget(ctx, "workers", lineup, notes, async (column, t) => {
      const names = Array.from({ length: STREAMS }, (_, i) => `s${i}`);
      await createStreams(t.url, names, "application/octet-stream");
      await createStream(t.url, "hot0", "application/octet-stream");
      const common = { script: "append" as const, threads: 1, connections: CONNECTIONS, seconds: duration };
      const a = await measureWrk(t, { ...common, env: { BENCH_STREAMS: String(STREAMS), BENCH_PREFIX: "s", BENCH_BODY_BYTES: String(BODY_BYTES) } }, warmup);
      if (errorCount(a.wrk) > 0) notes.push(`${column} spread: ${JSON.stringify(a.wrk.errors)}`);
      spread.cells[column] = rateCell(a, ((a.wrk.requests - a.wrk.errors.status) / a.wrk.duration_us) * 1e6);
      const h = await measureWrk(t, { ...common, env: { BENCH_STREAMS: "1", BENCH_PREFIX: "hot", BENCH_BODY_BYTES: String(BODY_BYTES) } }, warmup);
      if (errorCount(h.wrk) > 0) notes.push(`${column} hot: ${JSON.stringify(h.wrk.errors)}`);
      hot.cells[column] = rateCell(h, ((h.wrk.requests - h.wrk.errors.status) / h.wrk.duration_us) * 1e6);
    });
    // No target: an honest 1 vs 2 on this machine, as ratios in the notes.
    for (const row of [spread, hot]) {
      const r = valueOf(row, "extra") / valueOf(row, "ours-1");
      if (Number.isFinite(r)) notes.push(`${row.metric}: WORKERS=2 / one process = ${r.toFixed(2)}×`);
    }
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: [spread, hot], checks: [], notes };
  },
};
