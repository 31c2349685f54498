// 2. Hot stream: 64 concurrent writers on ONE stream, first plain appends, then
// idempotent-producer appends (one producer per connection, sequence numbers in order).
import { createStream } from "../lib/http.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { type MetricRow, ratioCheck, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Scenario, seconds, standardLineup, valueOf } from "../lib/scenario.ts";
import { errorCount } from "../lib/wrk.ts";

const WRITERS = 64;
const BODY_BYTES = 100;

export const hotScenario: Scenario = {
  id: "hot",
  title: "Hot stream (64 writers, one stream, 100 B appends)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const duration = seconds(ctx, 12, 3);
    const warmup = seconds(ctx, 2, 1);
    const plain: MetricRow = { metric: "Hot stream, plain appends", unit: "appends/s", cells: {} };
    const producer: MetricRow = { metric: "Hot stream, idempotent producers", unit: "appends/s", cells: {} };
    const notes: string[] = [];
    await eachTarget(ctx, "hot", standardLineup("bench_hot"), notes, async (column, t) => {
        await createStream(t.url, "hot0", "application/octet-stream");
        await createStream(t.url, "hotp", "application/octet-stream");
        // Both variants use one wrk thread per connection: the producer variant needs it
        // (see wrk/producer.lua), and the plain one then differs in nothing else.
        const common = { threads: WRITERS, connections: WRITERS, seconds: duration };
        const p = await measureWrk(t, { ...common, script: "append", env: { BENCH_STREAMS: "1", BENCH_PREFIX: "hot", BENCH_BODY_BYTES: String(BODY_BYTES) } }, warmup);
        // wrk/append.lua names streams <prefix><n>: with one stream that is "hot0".
        if (errorCount(p.wrk) > 0) notes.push(`${column} plain: ${JSON.stringify(p.wrk.errors)}`);
        plain.cells[column] = rateCell(p, ((p.wrk.requests - p.wrk.errors.status) / p.wrk.duration_us) * 1e6);
        // A producer restarting at seq 0 would be a duplicate: the warm-up gets its own ids.
        const run = `${ctx.runId}-${column}`;
        const env = { BENCH_STREAM: "hotp", BENCH_RUN: run, BENCH_BODY_BYTES: String(BODY_BYTES) };
        const q = await measureWrk(t, { ...common, script: "producer", env }, warmup, { BENCH_RUN: `${run}-warm` });
        const accepted = Number(q.wrk.accepted);
        if (errorCount(q.wrk) > 0 || Number(q.wrk.duplicates) > 0) {
          notes.push(`${column} producer: ${q.wrk.duplicates} duplicates, ${q.wrk.rejected} rejected, ${JSON.stringify(q.wrk.errors)}`);
        }
        producer.cells[column] = rateCell(q, (accepted / q.wrk.duration_us) * 1e6, { accepted, duplicates: q.wrk.duplicates, rejected: q.wrk.rejected });
    });
    const checks = [plain, producer].flatMap((row) => [
      ratioCheck(`${row.metric} vs reference file-backed`, valueOf(row, "ours-1"), valueOf(row, "ref-file"), 3, "appends/s"),
    ]);
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: [plain, producer], checks, notes };
  },
};
