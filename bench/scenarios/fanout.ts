// 4. Live fan-out: 1,000 SSE and 1,000 long-poll readers on one instance while a writer
// appends on another (ours, 3-instance cluster) or on the same one (ours alone and the
// reference, which has no second instance). Append → delivery latency p50 / p99.
import { JsonLineChild } from "../lib/child.ts";
import { createStream } from "../lib/http.ts";
import { CpuMeter, round, rssMiB, sleep } from "../lib/proc.ts";
import { type Column, limitCheck, type MetricRow, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, type Scenario, seconds } from "../lib/scenario.ts";
import { startOurs, startReference, type Target, withTarget } from "../lib/targets.ts";

const CLIENT = "bench/clients/fanout.ts";
const STREAM = "live";

interface ReaderSummary {
  mode: string;
  readers: number;
  connected: number;
  errors: number;
  reconnects: number;
  deliveries: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

async function measure(t: Target, readBase: string, writeBase: string, readers: number, perSecond: number, warmupS: number, durationS: number) {
  await createStream(t.url, STREAM, "text/plain");
  const sse = new JsonLineChild(CLIENT, ["readers", "sse", readBase, STREAM, String(readers)]);
  const lp = new JsonLineChild(CLIENT, ["readers", "long-poll", readBase, STREAM, String(readers)]);
  let writer: JsonLineChild | undefined;
  try {
    const ready = await Promise.all([sse.next<{ ready: number }>(90_000), lp.next<{ ready: number }>(90_000)]);
    await sleep(1000); // let the last long-polls reach their wait
    const meter = new CpuMeter(t.pids);
    writer = new JsonLineChild(CLIENT, ["writer", writeBase, STREAM, String(perSecond), String(warmupS), String(durationS)]);
    const written = await writer.next<{ sent: number; failed: number }>((warmupS + durationS + 30) * 1000);
    await sleep(1000); // deliveries still in flight
    const cpu = meter.stop();
    const rss = round(t.pids.reduce((s, p) => s + rssMiB(p), 0));
    sse.send("stop");
    lp.send("stop");
    const [s, l] = await Promise.all([sse.next<ReaderSummary>(30_000), lp.next<ReaderSummary>(30_000)]);
    return { sse: s, longPoll: l, written, ready: ready.map((r) => r.ready), cpu, rss };
  } finally {
    await Promise.all([sse.stop(), lp.stop(), writer?.stop()]);
  }
}

export const fanoutScenario: Scenario = {
  id: "fanout",
  title: "Live fan-out (1,000 SSE + 1,000 long-poll readers, append → delivery)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const readers = ctx.quick ? 100 : 1000;
    const perSecond = 10; // appends 100 ms apart: each one's fan-out should finish first
    const duration = seconds(ctx, 20, 3);
    const warmup = seconds(ctx, 2, 1);
    // Long-polls must not time out during the run; SSE connections must not be recycled.
    const env = { LONG_POLL_TIMEOUT_MS: "60000", SSE_MAX_LIFETIME_MS: "300000" };
    const lineup: { column: Column; start: () => Promise<Target>; split: boolean }[] = [
      { column: "ours-1", start: () => startOurs(1, { schema: "bench_fanout", env }), split: false },
      { column: "ours-3", start: () => startOurs(3, { schema: "bench_fanout_3", env }, false), split: true },
      { column: "ref-mem", start: () => startReference("memory"), split: false },
      { column: "ref-file", start: () => startReference("file"), split: false },
    ];
    const rows: Record<string, MetricRow> = {
      sseP50: { metric: "SSE delivery p50", unit: "ms", cells: {} },
      sseP99: { metric: "SSE delivery p99", unit: "ms", cells: {} },
      lpP50: { metric: "Long-poll delivery p50", unit: "ms", cells: {} },
      lpP99: { metric: "Long-poll delivery p99", unit: "ms", cells: {} },
    };
    rows.sseP50.note = "ours, 1 instance and the reference: readers and writer on the same instance; ours, 3 instances: readers on instance 1, writer on instance 2 (cross-instance, through Postgres NOTIFY)";
    const notes: string[] = [];
    for (const { column, start, split } of lineup) {
      ctx.log(`fanout: ${column}${split ? " (readers and writer on different instances)" : ""}`);
      await withTarget(start, async (t) => {
        const readBase = t.instanceUrls[0];
        const writeBase = split ? t.instanceUrls[1] : t.instanceUrls[0];
        const m = await measure(t, readBase, writeBase, readers, perSecond, warmup, duration);
        const expected = m.written.sent * readers;
        const detail = (r: ReaderSummary) => ({
          ...r,
          expectedDeliveries: expected,
          delivered: expected ? round(r.deliveries / expected, 3) : 0,
          appends: m.written,
          cpuCores: { server: m.cpu.serverCores, postgres: m.cpu.postgresCores, machine: m.cpu.machineCores },
          rssMiB: m.rss,
        });
        rows.sseP50.cells[column] = { value: m.sse.p50, detail: detail(m.sse) };
        rows.sseP99.cells[column] = { value: m.sse.p99 };
        rows.lpP50.cells[column] = { value: m.longPoll.p50, detail: detail(m.longPoll) };
        rows.lpP99.cells[column] = { value: m.longPoll.p99 };
        for (const r of [m.sse, m.longPoll]) {
          if (r.deliveries < expected || r.errors || r.reconnects) {
            notes.push(`${column} ${r.mode}: ${r.deliveries}/${expected} deliveries, ${r.errors} errors, ${r.reconnects} reconnects`);
          }
        }
      });
    }
    const cross = rows.sseP50.cells["ours-3"]!;
    const crossDetail = cross.detail as { delivered: number };
    const basis = `ours, readers on instance 1, appends on instance 2; ${readers} SSE + ${readers} long-poll readers, ${perSecond} appends/s; ${Math.round(crossDetail.delivered * 100)}% delivered`;
    const checks = [
      limitCheck("Cross-instance append → SSE p50", cross.value, "<=", 5, "ms", basis),
      limitCheck("Cross-instance append → SSE p99", rows.sseP99.cells["ours-3"]!.value, "<=", 25, "ms", basis),
    ];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: Object.values(rows), checks, notes };
  },
};
