// 6. Scaling: appends/s and latency at 16, 64, 256 and 1,024 connections, on 1,000 streams
// and on one hot stream. Each server starts once per workload and takes the connection
// counts in increasing order, each after a short warm-up of its own.
import { createStreams } from "../lib/http.ts";
import { openFilesLimit } from "../lib/machine.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { type Check, fmt, type MetricRow, ratioCheck, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, seconds, valueOf } from "../lib/scenario.ts";
import { startOurs, startReference, type Target } from "../lib/targets.ts";
import { errorCount } from "../lib/wrk.ts";

const CONNECTIONS = [16, 64, 256, 1024];
const BODY_BYTES = 100;
/** Connection counts at which ours must lead the reference in memory by 1.3x (issue 30). */
const LEAD_AT = [256, 1024];
/** Sockets beyond the connections themselves: listeners, Postgres pool, files, pipes. */
const FD_MARGIN = 256;

interface Workload {
  key: string;
  table: string;
  streams: number;
  prefix: string;
}

const WORKLOADS: Workload[] = [
  { key: "streams", table: "Scaling: 100 B appends over 1,000 streams", streams: 1000, prefix: "s" },
  // wrk/append.lua names streams <prefix><n>: with one stream that is "hot0".
  { key: "hot", table: "Scaling: 100 B plain appends to one hot stream", streams: 1, prefix: "hot" },
];

const lineup = (w: Workload): Lineup[] => [
  { column: "ours-1", start: () => startOurs(1, { schema: `bench_scale_${w.key}` }) },
  { column: "ref-mem", start: () => startReference("memory") },
  { column: "ref-file", start: () => startReference("file") },
];

/** wrk (our own limit: it is our child) and every server process need a socket per connection. */
function checkFileLimits(t: Target, needed: number): string {
  const limits = [{ who: "wrk", n: openFilesLimit().soft }, ...t.pids.map((p) => ({ who: `${t.kind} pid ${p}`, n: openFilesLimit(p).soft }))];
  const short = limits.filter((l) => l.n < needed);
  if (short.length) throw new Error(`open-files limit too low for ${needed - FD_MARGIN} connections: ${short.map((l) => `${l.who} ${l.n}`).join(", ")} (run under ulimit -n ${needed})`);
  return limits.map((l) => `${l.who} ${l.n}`).join(", ");
}

export const scaleScenario: Scenario = {
  id: "scale",
  title: "Scaling with connections (16 to 1,024; 1,000 streams and one hot stream)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const duration = seconds(ctx, 10, 1);
    const warmup = seconds(ctx, 2, 1);
    const rows: MetricRow[] = [];
    const notes: string[] = [
      `wrk with one thread; ${warmup} s warm-up then ${duration} s measured per connection count, one server start per workload (counts in increasing order)`,
    ];
    for (const w of WORKLOADS) {
      const newRow = (c: number): MetricRow => ({
        metric: `${c.toLocaleString("en-US")} connections`,
        unit: "appends/s (p50 / p99 ms)",
        cells: {},
        table: w.table,
        extraLabel: "ours ÷ ref-mem",
      });
      const byCount = new Map(CONNECTIONS.map((c) => [c, newRow(c)]));
      const names = Array.from({ length: w.streams }, (_, i) => `${w.prefix}${i}`);
      const env = { BENCH_STREAMS: String(w.streams), BENCH_PREFIX: w.prefix, BENCH_BODY_BYTES: String(BODY_BYTES) };
      await eachTarget(ctx, `scale ${w.key}`, lineup(w), notes, async (column, t) => {
        const limits = checkFileLimits(t, Math.max(...CONNECTIONS) + FD_MARGIN);
        if (w === WORKLOADS[0]) notes.push(`open-files limits (soft): ${limits}`);
        await createStreams(t.url, names, "application/octet-stream");
        for (const connections of CONNECTIONS) {
          ctx.log(`scale ${w.key}: ${column}, ${connections} connections`);
          const cells = byCount.get(connections)!.cells;
          try {
            const m = await measureWrk(t, { script: "append", threads: 1, connections, seconds: duration, env }, warmup);
            if (errorCount(m.wrk) > 0) notes.push(`${w.key}, ${column}, ${connections} connections: ${errorCount(m.wrk)} failed requests (${JSON.stringify(m.wrk.errors)}); only successes count`);
            const ok = m.wrk.requests - m.wrk.errors.status;
            const cell = rateCell(m, (ok / m.wrk.duration_us) * 1e6, { connections });
            const ms = (us: number) => fmt(us / 1000);
            cell.text = `${fmt(cell.value)} (${ms(m.wrk.latency_us.p50)} / ${ms(m.wrk.latency_us.p99)})`;
            cells[column] = cell;
          } catch (err) {
            // A dead server loses the rest of its counts (eachTarget notes it); a failed wrk run only this cell.
            if (t.exited()) throw err;
            const message = (err as Error).message ?? String(err);
            notes.push(`${w.key}, ${column}, ${connections} connections failed: ${message.split("\n").slice(0, 3).join(" ")}`);
          }
        }
      });
      for (const row of byCount.values()) {
        const ours = valueOf(row, "ours-1");
        const ref = valueOf(row, "ref-mem");
        if (ours > 0 && ref > 0) row.cells.extra = { value: ours / ref, text: `${fmt(ours / ref)}×`, detail: { basis: `${fmt(ours)} / ${fmt(ref)} appends/s` } };
        rows.push(row);
      }
    }
    // Issue 30: where connections are many, ours keeps a lead of at least 1.3x.
    const checks: Check[] = rows
      .filter((row) => LEAD_AT.includes(Number(row.cells["ours-1"]?.detail?.connections)))
      .map((row) => ratioCheck(`${row.table?.replace("Scaling: ", "")}, ${row.metric} vs reference in memory`, valueOf(row, "ours-1"), valueOf(row, "ref-mem"), 1.3, "appends/s"));
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows, checks, notes };
  },
};
