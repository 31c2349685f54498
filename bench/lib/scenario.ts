// What run.ts hands a scenario, and the standard line-up of servers it measures.
import type { Column, ScenarioResult } from "./results.ts";
import { startOurs, startReference, type Target } from "./targets.ts";

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
