// 1. Append throughput: 100-byte appends spread over 1,000 streams from 64 connections,
// plus the pgbench ceiling of one single-row INSERT transaction per append.
import { createStreams } from "../lib/http.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { runPgbench } from "../lib/pgbench.ts";
import { cpuPerRequest, fmt, limitCheck, type MetricRow, ratioCheck, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Scenario, seconds, standardLineup, valueOf } from "../lib/scenario.ts";
import { errorCount } from "../lib/wrk.ts";

const STREAMS = 1000;
const CONNECTIONS = 64;
const BODY_BYTES = 100;

export const appendScenario: Scenario = {
  id: "append",
  title: "Append throughput (100 B over 1,000 streams, 64 connections)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const duration = seconds(ctx, 15, 3);
    const warmup = seconds(ctx, 3, 1);
    const names = Array.from({ length: STREAMS }, (_, i) => `s${i}`);
    const row: MetricRow = { metric: "Append throughput", unit: "appends/s", cells: {}, extraLabel: "pgbench ceiling" };
    const notes: string[] = [];
    await eachTarget(ctx, "append", standardLineup("bench_append"), notes, async (column, t) => {
        await createStreams(t.url, names, "application/octet-stream");
        const m = await measureWrk(
          t,
          { script: "append", threads: 1, connections: CONNECTIONS, seconds: duration, env: { BENCH_STREAMS: String(STREAMS), BENCH_PREFIX: "s", BENCH_BODY_BYTES: String(BODY_BYTES) } },
          warmup,
        );
        if (errorCount(m.wrk) > 0) notes.push(`${column}: ${errorCount(m.wrk)} failed requests (${JSON.stringify(m.wrk.errors)}); only successes count`);
        const ok = m.wrk.requests - m.wrk.errors.status;
        row.cells[column] = rateCell(m, (ok / m.wrk.duration_us) * 1e6);
    });
    ctx.log("append: pgbench ceiling");
    const pg = await runPgbench({ clients: CONNECTIONS, seconds: duration, streams: STREAMS, bodyBytes: BODY_BYTES });
    row.cells.extra = { value: Math.round(pg.tps), detail: { ...pg, script: "one INSERT of a 100-byte row per transaction, 64 clients" } };

    // Issue 30: appends/s against the in-memory reference is reported, not a target (it moves
    // with the day's disk); the target is the CPU a durable append costs, server plus Postgres.
    const ours = valueOf(row, "ours-1");
    const oursCpu = cpuPerRequest(row.cells["ours-1"]);
    const refCpu = cpuPerRequest(row.cells["ref-mem"]);
    const checks = [
      limitCheck("CPU per durable append vs reference in memory (server + Postgres)", oursCpu / refCpu, "<=", 1.2, "×", `${fmt(oursCpu)} / ${fmt(refCpu)} µs per append`),
      ratioCheck("Appends/s vs reference file-backed", ours, valueOf(row, "ref-file"), 3, "appends/s"),
    ];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: [row], checks, notes };
  },
};
