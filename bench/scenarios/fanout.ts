// 4. Live fan-out: 1,000 SSE and 1,000 long-poll readers on one instance while a writer
// appends on another (ours, 3-instance cluster) or on the same one (ours alone and the
// reference, which has no second instance). Append → delivery latency p50 / p99.
import { JsonLineChild } from "../lib/child.ts";
import { createStream } from "../lib/http.ts";
import { CpuMeter, round, rssMiB, sleep } from "../lib/proc.ts";
import { limitCheck, type MetricRow, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, seconds, valueOf } from "../lib/scenario.ts";
import { startFloor, startOurs, startReference, type Target } from "../lib/targets.ts";

const CLIENT = "bench/clients/fanout.ts";
const STREAM = "live";
/**
 * Appends 200 ms apart. Every append wakes all 2,000 readers, so this is 10,000
 * deliveries a second; a server that needs longer than the gap to fan one append out
 * shows it as latency (its readers then pick up several appends per wake-up).
 */
const APPENDS_PER_SECOND = 5;

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

async function measure(t: Target, readBase: string, writeBase: string, readers: number, warmupS: number, durationS: number) {
  await createStream(t.url, STREAM, "text/plain");
  const sse = new JsonLineChild(CLIENT, ["readers", "sse", readBase, STREAM, String(readers)]);
  const lp = new JsonLineChild(CLIENT, ["readers", "long-poll", readBase, STREAM, String(readers)]);
  let writer: JsonLineChild | undefined;
  try {
    await Promise.all([sse.next<{ ready: number }>(90_000), lp.next<{ ready: number }>(90_000)]);
    await sleep(1000); // let the last long-polls reach their wait
    const server = new CpuMeter(t.pids);
    const clients = new CpuMeter([sse.pid, lp.pid]);
    writer = new JsonLineChild(CLIENT, ["writer", writeBase, STREAM, String(APPENDS_PER_SECOND), String(warmupS), String(durationS)]);
    const written = await writer.next<{ sent: number; failed: number }>((warmupS + durationS + 60) * 1000);
    await sleep(1000); // deliveries still in flight
    const cpu = server.stop();
    const clientCores = clients.stop().serverCores;
    const rss = round(t.pids.reduce((s, p) => s + rssMiB(p), 0));
    sse.send("stop");
    lp.send("stop");
    const [s, l] = await Promise.all([sse.next<ReaderSummary>(30_000), lp.next<ReaderSummary>(30_000)]);
    return { sse: s, longPoll: l, written, cpu, clientCores, rss };
  } finally {
    await Promise.all([sse.stop(), lp.stop(), writer?.stop()]);
  }
}

export const fanoutScenario: Scenario = {
  id: "fanout",
  title: `Live fan-out (1,000 SSE + 1,000 long-poll readers, ${APPENDS_PER_SECOND} appends/s, append → delivery)`,
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const readers = ctx.quick ? 100 : 1000;
    const duration = seconds(ctx, 20, 3);
    const warmup = seconds(ctx, 2, 1);
    // Long-polls must not time out during the run; SSE connections must not be recycled.
    const env = { LONG_POLL_TIMEOUT_MS: "60000", SSE_MAX_LIFETIME_MS: "300000" };
    const lineup: Lineup[] = [
      { column: "ours-1", start: () => startOurs(1, { schema: "bench_fanout", env }) },
      { column: "ours-3", start: () => startOurs(3, { schema: "bench_fanout_3", env }, false) },
      { column: "ref-mem", start: () => startReference("memory") },
      { column: "ref-file", start: () => startReference("file") },
      { column: "extra", start: startFloor },
    ];
    const floor = "floor: minimal Bun broadcaster";
    const rows: Record<string, MetricRow> = {
      sseP50: { metric: "SSE delivery p50", unit: "ms", cells: {}, extraLabel: floor },
      sseP99: { metric: "SSE delivery p99", unit: "ms", cells: {}, extraLabel: floor },
      lpP50: { metric: "Long-poll delivery p50", unit: "ms", cells: {}, extraLabel: floor },
      lpP99: { metric: "Long-poll delivery p99", unit: "ms", cells: {}, extraLabel: floor },
    };
    rows.sseP50.note =
      "ours, 1 instance and the reference: readers and writer on the same instance; ours, 3 instances: readers on instance 1, writer on instance 2 (cross-instance, woken through Postgres NOTIFY); no load balancer. The floor is bench/servers/floor.ts: an in-memory broadcaster doing one socket write per SSE reader and nothing else, run with the same clients, i.e. the best this machine and client allow";
    const notes: string[] = [];
    await eachTarget(ctx, "fanout", lineup, notes, async (column, t) => {
      const cross = column === "ours-3";
      const m = await measure(t, t.instanceUrls[0], t.instanceUrls[cross ? 1 : 0], readers, warmup, duration);
      const expected = m.written.sent * readers;
      const detail = (r: ReaderSummary) => ({
        ...r,
        expectedDeliveries: expected,
        delivered: expected ? round(r.deliveries / expected, 3) : 0,
        appends: { ...m.written, perSecondAsked: APPENDS_PER_SECOND, perSecondDone: round(m.written.sent / duration, 1) },
        cpuCores: { server: m.cpu.serverCores, postgres: m.cpu.postgresCores, clients: m.clientCores, machine: m.cpu.machineCores },
        rssMiB: m.rss,
      });
      rows.sseP50.cells[column] = { value: m.sse.p50, detail: detail(m.sse) };
      rows.sseP99.cells[column] = { value: m.sse.p99 };
      rows.lpP50.cells[column] = { value: m.longPoll.p50, detail: detail(m.longPoll) };
      rows.lpP99.cells[column] = { value: m.longPoll.p99 };
      if (m.written.sent < APPENDS_PER_SECOND * duration * 0.9) {
        notes.push(`${column}: the writer managed ${m.written.sent} of ${APPENDS_PER_SECOND * duration} appends (each waits for the previous one's answer)`);
      }
      for (const r of [m.sse, m.longPoll]) {
        if (r.deliveries < expected || r.errors || r.reconnects) {
          notes.push(`${column} ${r.mode}: ${r.deliveries}/${expected} deliveries, ${r.errors} errors, ${r.reconnects} reconnects`);
        }
      }
    });
    const crossDetail = rows.sseP50.cells["ours-3"]?.detail as { delivered: number } | undefined;
    const basis = `ours, readers on instance 1, appends on instance 2; ${readers} SSE + ${readers} long-poll readers, ${APPENDS_PER_SECOND} appends/s; ${Math.round((crossDetail?.delivered ?? 0) * 100)}% delivered`;
    // Against the floor measured in the same run: p50 within 3 ms of it (issue 30).
    const floorP50 = valueOf(rows.sseP50, "extra");
    const checks = [
      limitCheck("Cross-instance append → SSE p99", valueOf(rows.sseP99, "ours-3"), "<=", 25, "ms", basis),
      limitCheck("Cross-instance SSE p50 above the floor's", valueOf(rows.sseP50, "ours-3") - floorP50, "<=", 3, "ms", `${basis}; floor p50 ${floorP50} ms`),
    ];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: Object.values(rows), checks, notes };
  },
};
