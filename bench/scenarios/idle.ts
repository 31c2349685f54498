// 5. Idle connections: 10,000 SSE readers held open on one instance (over 100 quiet
// streams); the server's resident memory, per connection, and the CPU it burns idling.
import { JsonLineChild } from "../lib/child.ts";
import { createStreams } from "../lib/http.ts";
import { CpuMeter, round, rssMiB, sleep } from "../lib/proc.ts";
import { limitCheck, type MetricRow, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, seconds, valueOf } from "../lib/scenario.ts";
import { startOurs, startReference } from "../lib/targets.ts";

const STREAMS = 100;
const RSS_LIMIT_MIB = 200; // issue 30

export const idleScenario: Scenario = {
  id: "idle",
  title: "Idle connections (10,000 open SSE readers on one instance)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const readers = ctx.quick ? 1000 : 10_000;
    const hold = seconds(ctx, 15, 3);
    // No connection may be recycled while we count them.
    const env = { SSE_MAX_LIFETIME_MS: "600000" };
    const lineup: Lineup[] = [
      { column: "ours-1", start: () => startOurs(1, { schema: "bench_idle", env }) },
      { column: "ref-mem", start: () => startReference("memory") },
      { column: "ref-file", start: () => startReference("file") },
    ];
    const rss: MetricRow = { metric: `RSS with ${readers.toLocaleString("en-US")} idle SSE readers`, unit: "MiB", cells: {} };
    const perConn: MetricRow = { metric: "Memory per idle SSE reader", unit: "KiB", cells: {} };
    const cpu: MetricRow = { metric: "CPU while the readers idle", unit: "% of a core", cells: {} };
    const notes: string[] = [];
    await eachTarget(ctx, "idle", lineup, notes, async (column, t) => {
        const pid = t.pids[0];
        const names = Array.from({ length: STREAMS }, (_, i) => `idle${i}`);
        await createStreams(t.url, names, "text/plain");
        await sleep(1000);
        const before = rssMiB(pid);
        const client = new JsonLineChild("bench/clients/fanout.ts", ["readers", "sse", t.url, "idle", String(readers), String(STREAMS)]);
        try {
          const opened = performance.now();
          const ready = await client.next<{ ready: number; errors: number }>(180_000);
          const openSeconds = round((performance.now() - opened) / 1000, 1);
          if (ready.ready < readers) notes.push(`${column}: only ${ready.ready} of ${readers} readers connected (${ready.errors} errors)`);
          await sleep(1000);
          const meter = new CpuMeter([pid]);
          let peak = 0;
          for (let s = 0; s < hold; s++) {
            await sleep(1000);
            peak = Math.max(peak, rssMiB(pid));
          }
          const used = meter.stop();
          client.send("stop");
          const summary = await client.next<{ reconnects: number; errors: number }>(30_000);
          if (summary.reconnects || summary.errors) notes.push(`${column}: ${summary.reconnects} readers were disconnected during the hold`);
          const kib = ((peak - before) * 1024) / Math.max(1, ready.ready);
          const detail = { rssBeforeMiB: round(before), rssPeakMiB: round(peak), connected: ready.ready, openSeconds, holdSeconds: hold, cpuCores: { server: used.serverCores, postgres: used.postgresCores } };
          rss.cells[column] = { value: round(peak), detail };
          perConn.cells[column] = { value: round(kib, 1) };
          cpu.cells[column] = { value: round(used.serverCores * 100, 1), text: `${round(used.serverCores * 100, 1)} (+${round(used.postgresCores * 100, 1)} postgres)` };
        } finally {
          await client.stop();
        }
    });
    const checks = [
      limitCheck(`RSS with ${readers.toLocaleString("en-US")} idle SSE readers`, valueOf(rss, "ours-1"), "<=", RSS_LIMIT_MIB, "MiB", `ours, 1 instance: peak VmRSS, ${valueOf(perConn, "ours-1")} KiB per reader`),
    ];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: [rss, perConn, cpu], checks, notes };
  },
};
