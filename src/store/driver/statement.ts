// Statements rendered by drizzle's Postgres dialect, and the row shape both drivers answer with.
import { Placeholder, type SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { QueryOptions, Queryable } from "./db.ts";

export const dialect = new PgDialect();

/**
 * A hot statement rendered to text once: drizzle walks the SQL tree when it renders, which
 * cost an append group several microseconds per append. Parameters are drizzle placeholders
 * (sql.placeholder("name")), filled per run; other embedded values stay fixed.
 */
export interface Statement {
  readonly text: string;
  /** Per parameter: the placeholder it takes its value from, or its fixed value. */
  readonly slots: readonly ({ name: string } | { value: unknown })[];
}

export function statement(q: SQL): Statement {
  const { sql: text, params } = dialect.sqlToQuery(q);
  return { text, slots: params.map((p) => (p instanceof Placeholder ? { name: p.name } : { value: p })) };
}

function bind(st: Statement, values: Record<string, unknown>): unknown[] {
  return st.slots.map((slot) => {
    if ("value" in slot) return slot.value;
    if (!(slot.name in values)) throw new Error(`no value for placeholder ${slot.name}`);
    return values[slot.name];
  });
}

function normalize<T>(result: unknown): T[] {
  // postgres.js returns an array of rows; PGlite returns { rows }.
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

export function wrap(
  run: (q: SQL, opts?: QueryOptions) => Promise<unknown>,
  exec: (script: string) => Promise<unknown>,
  runText: (text: string, params: unknown[]) => Promise<unknown>,
): Queryable {
  return {
    rows: async <T>(q: SQL, opts?: QueryOptions) => normalize<T>(await run(q, opts)),
    run: async <T>(st: Statement, values: Record<string, unknown>) => normalize<T>(await runText(st.text, bind(st, values))),
    exec: async (script) => {
      await exec(script);
    },
  };
}
