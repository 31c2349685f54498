// The backstop's one query: the current state of many streams at once, so one statement
// per instance re-checks every stream that has live readers.
import type { StreamState } from "./change.ts";
import { type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";

/** State of each stream that still exists and is readable; absent ids are gone. */
export async function streamStates(q: Queryable, ids: number[]): Promise<Map<number, StreamState>> {
  const rows = await q.rows<{ id: unknown; tail: unknown; closed: boolean }>(sql`
    SELECT s.id, s.tail, s.closed FROM ds_streams s
    WHERE s.id = ANY(${pgArray(ids)}::int8[]) AND s.deleted_at IS NULL AND s.path IS NOT NULL`);
  return new Map(rows.map((r) => [Number(r.id), { tail: Number(r.tail), closed: Boolean(r.closed) }]));
}
