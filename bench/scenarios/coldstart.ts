// 9. Cold start (issue 30): a server that has just started takes traffic at once (a new instance
// joining a load balancer). The official IdempotentProducer (lingerMs 2) offers about 10,000
// JSON messages a second to a fresh server with an SSE and a long-poll reader on the same
// instance; delivery latency of the first 2,000 messages (cold) against the last 2,000 of the
// same run (warm). Each server is started fresh for each round, and waits for /healthz first.
// The client is a fresh Bun process too, whose own code is as cold as the server's: it first
// runs the same load against a reference server kept for that (bench/clients/coldstart.ts,
// <warmUpUrl>), so what the first 2,000 measure is the server's cold start, not the client's.
import { JsonLineChild } from "../lib/child.ts";
import { round } from "../lib/proc.ts";
import { fmt, limitCheck, type MetricRow, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, valueOf } from "../lib/scenario.ts";
import { startOurs, startReference, type Target } from "../lib/targets.ts";

const PER_MS = 10;

interface Summary { coldP50: number; coldP99: number; warmP50: number; warmP99: number }
interface Report { sent: number; offeredPerSecond: number; received: { sse: number; longPoll: number }; errors: number; sse: Summary; longPoll: Summary }

export const coldStartScenario: Scenario = {
  id: "coldstart",
  title: "Cold start (first 2,000 producer messages after a fresh start, SSE + long-poll readers)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const messages = ctx.quick ? 6_000 : 20_000;
    const rounds = ctx.quick ? 1 : 3;
    const rows = {
      cold: { metric: "SSE delivery p50, first 2,000 messages", unit: "ms", cells: {} } as MetricRow,
      warm: { metric: "SSE delivery p50, last 2,000 messages", unit: "ms", cells: {} } as MetricRow,
      coldLp: { metric: "Long-poll delivery p50, first 2,000 messages", unit: "ms", cells: {} } as MetricRow,
    };
    const notes: string[] = [`${messages.toLocaleString("en-US")} messages offered at ${PER_MS * 1000}/s per round, ${rounds} rounds on fresh servers; cells are the median round`];
    const perColumn = new Map<string, Report[]>();
    const clientWarmUp: Target = await startReference("memory");
    notes.push("each client first ran the same load against a separate reference server, so its own code was warm");
    try {
      for (let r = 0; r < rounds; r++) {
        const lineup: Lineup[] = [
          { column: "ours-1", start: () => startOurs(1, { schema: `bench_cold_${r}` }) },
          { column: "ref-mem", start: () => startReference("memory") },
        ];
        await eachTarget(ctx, `coldstart round ${r + 1}`, lineup, notes, async (column, t) => {
          const client = new JsonLineChild("bench/clients/coldstart.ts", [t.url, `cold${r}`, String(messages), String(PER_MS), clientWarmUp.url]);
          try {
            const report = await client.next<Report>(120_000);
            if (report.errors || report.received.sse < messages || report.received.longPoll < messages) {
              notes.push(`${column} round ${r + 1}: ${report.errors} producer errors, received ${report.received.sse} (SSE) / ${report.received.longPoll} (long-poll) of ${messages}`);
            }
            perColumn.set(column, [...(perColumn.get(column) ?? []), report]);
          } finally {
            await client.stop();
          }
        });
      }
    } finally {
      await clientWarmUp.stop();
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const [column, reports] of perColumn) {
      const c = column as "ours-1" | "ref-mem";
      rows.cold.cells[c] = { value: round(median(reports.map((x) => x.sse.coldP50)), 2), detail: { rounds: reports } };
      rows.warm.cells[c] = { value: round(median(reports.map((x) => x.sse.warmP50)), 2) };
      rows.coldLp.cells[c] = { value: round(median(reports.map((x) => x.longPoll.coldP50)), 2) };
    }
    const cold = valueOf(rows.cold, "ours-1");
    const warm = valueOf(rows.warm, "ours-1");
    const checks = [limitCheck("Cold start: first-2,000 SSE p50 vs warm p50 (ours)", cold / warm, "<=", 2, "×", `${fmt(cold)} / ${fmt(warm)} ms`)];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: Object.values(rows), checks, notes };
  },
};
