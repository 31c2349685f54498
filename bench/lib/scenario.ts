// What run.ts hands a scenario, and the standard line-up of servers it measures.
import type { Column, ScenarioResult } from "./results.ts";
import { startOurs, startReference, type Target, withTarget } from "./targets.ts";

export interface Ctx {
  quick: boolean;
  /** Unique per run: keeps producer ids and stream names from colliding across runs. */
  runId: string;
  log(message: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

export interface Lineup {
  column: Column;
  start: () => Promise<Target>;
}

/** ours on 1 instance, ours on 3 behind nginx, then the reference in memory and on files. */
export function standardLineup(schema: string, opts: { env?: Record<string, string>; shareSchema?: boolean } = {}): Lineup[] {
  return [
    { column: "ours-1", start: () => startOurs(1, { schema, env: opts.env }) },
    {
      column: "ours-3",
      start: () =>
        startOurs(3, { schema: opts.shareSchema ? schema : `${schema}_lb`, keepSchema: opts.shareSchema, env: opts.env }),
    },
    { column: "ref-mem", start: () => startReference("memory") },
    { column: "ref-file", start: () => startReference("file") },
  ];
}

export const seconds = (ctx: Ctx, full: number, quick: number) => (ctx.quick ? quick : full);

/**
 * Runs fn against each server of the line-up in turn. A server that fails (or dies) costs
 * its own cell, noted in the results, not the whole scenario.
 */
export async function eachTarget(
  ctx: Ctx,
  scenario: string,
  lineup: Lineup[],
  notes: string[],
  fn: (column: Column, target: Target) => Promise<void>,
): Promise<void> {
  // BENCH_COLUMNS=ours-3,extra measures only those columns (for quick iterations; a run
  // that skips columns leaves their cells empty).
  const only = process.env.BENCH_COLUMNS?.split(",").map((c) => c.trim()).filter(Boolean);
  for (const { column, start } of lineup) {
    if (only && !only.includes(column)) continue;
    ctx.log(`${scenario}: ${column}`);
    try {
      await withTarget(start, async (t) => {
        await fn(column, t);
        const gone = t.exited();
        if (gone) throw new Error(`server died during the measurement: ${gone}`);
      });
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      ctx.log(`${scenario}: ${column} failed: ${message}`);
      notes.push(`${column} failed: ${message.split("\n").slice(0, 3).join(" ")}`);
    }
  }
}

/** A cell's value, NaN when that server failed. */
export const valueOf = (row: { cells: Partial<Record<Column, { value: number }>> }, c: Column) => row.cells[c]?.value ?? NaN;
