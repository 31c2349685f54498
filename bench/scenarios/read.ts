// 3. Catch-up read: one client reads a 128 MiB binary stream from -1 to the tail,
// uncompressed (wrk sends no Accept-Encoding), over and over; MiB/s of body received.
import { randomFillSync } from "node:crypto";
import { append, createStream, parallel } from "../lib/http.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { type MetricRow, ratioCheck, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Scenario, seconds, standardLineup, valueOf } from "../lib/scenario.ts";
import type { Target } from "../lib/targets.ts";

const MiB = 1024 * 1024;
/** Appends of 64 KiB: big enough to fill quickly, small enough to be an ordinary write. */
const APPEND_BYTES = 64 * 1024;
const STREAM = "big";

async function fill(t: Target, totalBytes: number): Promise<void> {
  await createStream(t.url, STREAM, "application/octet-stream");
  // Random bytes: a repeated pattern would let storage compression flatter the result.
  const block = new Uint8Array(APPEND_BYTES);
  await parallel(totalBytes / APPEND_BYTES, 4, async () => {
    randomFillSync(block);
    await append(t.url, STREAM, "application/octet-stream", block.slice());
  });
}

export const readScenario: Scenario = {
  id: "read",
  title: "Catch-up read (128 MiB binary stream, -1 to tail, uncompressed)",
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const size = (ctx.quick ? 16 : 128) * MiB;
    const duration = seconds(ctx, 15, 3);
    const warmup = seconds(ctx, 3, 1);
    const row: MetricRow = { metric: "Catch-up read", unit: "MiB/s", cells: {} };
    const notes: string[] = [];
    let oursFilled = false;
    // ours-1 and ours-3 share one schema, so the stream is written once.
    await eachTarget(ctx, "read", standardLineup("bench_read", { shareSchema: true }), notes, async (column, t) => {
        const isOurs = column.startsWith("ours");
        if (!isOurs || !oursFilled) {
          const began = performance.now();
          await fill(t, size);
          ctx.log(`read: filled ${size / MiB} MiB in ${((performance.now() - began) / 1000).toFixed(1)} s`);
          oursFilled ||= isOurs;
        }
        const m = await measureWrk(t, { script: "catchup", threads: 1, connections: 1, seconds: duration, timeoutSeconds: 60, env: { BENCH_STREAM: STREAM } }, warmup);
        const bytes = Number(m.wrk.body_bytes);
        if (Number(m.wrk.bad) > 0) notes.push(`${column}: ${m.wrk.bad} reads answered other than 200`);
        const mibPerSecond = bytes / MiB / (m.wrk.duration_us / 1e6);
        const cell = rateCell(m, mibPerSecond, { passes: m.wrk.passes, bodyMiB: Math.round(bytes / MiB), streamMiB: size / MiB });
        row.cells[column] = { ...cell, value: Math.round(mibPerSecond * 10) / 10 };
    });
    const checks = [ratioCheck("Catch-up MiB/s vs reference in memory", valueOf(row, "ours-1"), valueOf(row, "ref-mem"), 0.5, "MiB/s")];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: [row], checks, notes };
  },
};
