// What the retention pass removes, in SQL (README "Retention and compaction"): where a
// policy cuts a stream, the earliest offset moved up before any row goes, and rows deleted
// in bounded statements that each keep the stream's stored-bytes count (ds_retention) right.
// Every statement is its own short transaction; the only lock others could wait on, the
// stream row, is taken with SKIP LOCKED for one small UPDATE.
import type { RetentionPolicy } from "../../protocol/retention.ts";
import { type Db, type Queryable, sql } from "../driver/db.ts";
import type { SQL } from "drizzle-orm";
import { PREPARED } from "./retention.ts";

export interface Removed {
  rows: number;
  bytes: number;
}

/**
 * Where the policy cuts the stream, with what is stored below `tail`: the first position to
 * keep, always a row's start (or the tail), so no message is ever cut apart and rows of small
 * appends that share a row go together. Only the stream's own rows count: what a fork
 * inherits follows its source's policy. Reads only the rows it cuts (and one more). Also
 * returns when the oldest kept row reaches the age limit (null: no age limit or no row).
 */
export async function retentionCut(
  q: Queryable,
  s: { id: number; earliest: number; forkOffset: number | null; tail: number },
  policy: RetentionPolicy,
  keptBytes: number,
): Promise<{ cut: number; ageWake: string | null }> {
  const lo = Math.max(s.earliest, s.forkOffset ?? 0);
  let cut = lo;
  let ageWake: string | null = null;
  if (policy.maxAgeSeconds !== null) {
    // The first row young enough to keep, else the tail (all of it is old).
    const rows = await q.rows<{ start_pos: unknown; wake: unknown }>(sql`
      SELECT start_pos, (appended_at + ${policy.maxAgeSeconds} * interval '1 second')::text AS wake
      FROM ds_chunks WHERE stream_id = ${s.id} AND start_pos >= ${lo} AND start_pos < ${s.tail}
        AND appended_at > clock_timestamp() - ${policy.maxAgeSeconds} * interval '1 second'
      ORDER BY start_pos LIMIT 1`, PREPARED);
    cut = Math.max(cut, rows.length ? Number(rows[0].start_pos) : s.tail);
    ageWake = rows.length ? String(rows[0].wake) : null;
  }
  if (policy.maxBytes !== null && keptBytes > policy.maxBytes) {
    // Rows go from the front until what is left is within the limit; the newest row is
    // always kept. Sizes come from octet_length, which reads no TOAST data.
    const rows = await q.rows<{ cut: unknown }>(sql`
      SELECT least(
        (SELECT end_pos FROM (SELECT end_pos, sum(octet_length(data)) OVER (ORDER BY start_pos) AS removed
                              FROM ds_chunks WHERE stream_id = ${s.id} AND start_pos < ${s.tail} ORDER BY start_pos) w
         WHERE removed >= ${keptBytes - policy.maxBytes} LIMIT 1),
        (SELECT max(start_pos) FROM ds_chunks WHERE stream_id = ${s.id} AND start_pos < ${s.tail})) AS cut`, PREPARED);
    if (rows[0]?.cut !== null && rows[0]?.cut !== undefined) cut = Math.max(cut, Number(rows[0].cut));
  }
  return { cut, ageWake };
}

/**
 * Raises the earliest offset to `cut` before any row below it is deleted, so a reader never
 * finds a gap below the earliest offset it was told; forks (and forks of forks) reading
 * below it are cut too. The stream row is taken with SKIP LOCKED: while an append group
 * holds it this returns "busy" rather than waiting, and the row is held for this statement
 * only. Returns the earliest offset now in force, or "busy".
 */
export async function raiseEarliest(db: Db, streamId: number, cut: number): Promise<number | "busy"> {
  const rows = await db.rows<{ moved: unknown; earliest: unknown }>(sql`
    WITH RECURSIVE me AS (
      UPDATE ds_streams SET earliest = ${cut}
      WHERE id = (SELECT id FROM ds_streams WHERE id = ${streamId} AND earliest < ${cut} FOR NO KEY UPDATE SKIP LOCKED)
      RETURNING id
    ), f AS (
      SELECT id, least(${cut}::bigint, fork_offset) AS e FROM ds_streams WHERE fork_source = ${streamId}
      UNION ALL
      SELECT s.id, least(f.e, s.fork_offset) FROM ds_streams s JOIN f ON s.fork_source = f.id
    ), forks AS (
      UPDATE ds_streams s SET earliest = f.e FROM f WHERE s.id = f.id AND s.earliest < f.e AND EXISTS (SELECT 1 FROM me)
    )
    SELECT (SELECT count(*) FROM me) AS moved, (SELECT earliest FROM ds_streams WHERE id = ${streamId}) AS earliest`, PREPARED);
  if (Number(rows[0]?.moved ?? 0) > 0) return cut;
  // Not moved: either someone already moved it (the snapshot's value shows it) or the row is busy.
  const earliest = Number(rows[0]?.earliest ?? 0);
  return earliest >= cut ? earliest : "busy";
}

/** The statement-long advisory lock that keeps two passes' deletes on one stream from overlapping. */
const streamLock = (schema: string, streamId: number) =>
  sql`SELECT pg_try_advisory_xact_lock(hashtext(${`ds_retention:${schema}`}), ${streamId}::int) AS ok`;

/** Deletes rows chosen by `doomed` (a query of start_pos) and takes their bytes off the count. */
const deleteAndCount = (streamId: number, doomed: SQL) => sql`
  gone AS (DELETE FROM ds_chunks WHERE stream_id = ${streamId} AND start_pos IN (${doomed})
           RETURNING octet_length(data) AS len),
  counted AS (UPDATE ds_retention SET kept_bytes = kept_bytes - (SELECT coalesce(sum(len), 0) FROM gone) WHERE stream_id = ${streamId})`;

/**
 * One statement: deletes up to `batch` of the stream's rows below `cut` (already below the
 * earliest offset, so no reader is sent to them). Undefined when another pass holds the
 * stream.
 */
export async function removeBelow(db: Db, streamId: number, cut: number, batch: number): Promise<(Removed & { done: boolean }) | undefined> {
  const rows = await db.rows<{ ok: unknown; n: unknown; bytes: unknown }>(sql`
    WITH l AS (${streamLock(db.schema, streamId)}),
    ${deleteAndCount(streamId, sql`SELECT start_pos FROM ds_chunks WHERE stream_id = ${streamId} AND start_pos < ${cut}
                                     AND (SELECT ok FROM l) ORDER BY start_pos LIMIT ${batch}`)}
    SELECT (SELECT ok FROM l) AS ok, (SELECT count(*) FROM gone) AS n, (SELECT coalesce(sum(len), 0) FROM gone) AS bytes`, PREPARED);
  if (!rows[0]?.ok) return undefined;
  const n = Number(rows[0].n);
  return { rows: n, bytes: Number(rows[0].bytes), done: n < batch };
}

/** A message as jsonb: directly when it has no \u escape, else by ds_message_jsonb (0010), which gives up on what jsonb cannot hold. */
const FAST_JSONB = sql`CASE WHEN position('\\x5c75'::bytea IN data) = 0 THEN convert_from(data, 'UTF8')::jsonb ELSE ds_message_jsonb(data) END`;
const SAFE_JSONB = sql`ds_message_jsonb(data)`;

/**
 * One compaction step over the stream's own rows in [lo, to) (State Protocol,
 * STATE-PROTOCOL.md), in one statement: deletes each change event (an object with string
 * `type` and `key` and headers.operation insert, update, upsert or delete) that a later
 * change of the same (type, key) below `to` supersedes, and a delete that is its key's last
 * change and older than the grace period with no earlier change of the key left to
 * resurrect. Anything else (control events, other messages) is never touched. Forks read
 * this stream's rows below their fork points, so a change counts as superseded only by one
 * below the same fork points ("zones"): every fork still reads a history that materializes to
 * the same state. Rows below the step's start were compacted by earlier steps, so a step
 * removes at most its own range's rows plus one per key. Returns when the oldest delete kept
 * for its grace period may go; undefined when another pass holds the stream.
 */
export async function compactRange(
  db: Db,
  streamId: number,
  lo: number,
  to: number,
  deleteGraceMs: number,
  safeParse = false,
): Promise<(Removed & { graceWake: string | null }) | undefined> {
  const rows = await db.rows<{ ok: unknown; n: unknown; bytes: unknown; wake: unknown }>(sql`
    WITH RECURSIVE l AS (${streamLock(db.schema, streamId)}),
    forks AS (
      SELECT id, fork_offset AS point FROM ds_streams WHERE fork_source = ${streamId}
      UNION ALL
      SELECT s.id, least(f.point, s.fork_offset) FROM ds_streams s JOIN forks f ON s.fork_source = f.id
    ), points AS (SELECT coalesce(array_agg(DISTINCT point), '{}') AS p FROM forks),
    ev AS (
      SELECT start_pos, appended_at, j->>'type' AS t, j->>'key' AS k, j->'headers'->>'operation' AS op,
             CASE WHEN (SELECT cardinality(p) FROM points) = 0 THEN 0
                  ELSE (SELECT count(*) FROM unnest((SELECT p FROM points)) AS fp WHERE fp <= start_pos) END AS zone
      FROM (SELECT start_pos, appended_at, ${safeParse ? SAFE_JSONB : FAST_JSONB} AS j FROM ds_chunks
            WHERE stream_id = ${streamId} AND start_pos >= ${lo} AND start_pos < ${to} AND (SELECT ok FROM l)
            -- OFFSET 0 keeps the planner from inlining the parse into every use of j
            -- (measured: each row parsed about eight times, 50 µs a row)
            OFFSET 0) c
      WHERE jsonb_typeof(j) = 'object' AND jsonb_typeof(j->'type') = 'string' AND jsonb_typeof(j->'key') = 'string'
        AND jsonb_typeof(j->'headers') = 'object' AND j->'headers'->>'operation' IN ('insert', 'update', 'upsert', 'delete')
    ), ranked AS (
      SELECT start_pos, zone, op = 'delete' AND rn_all = 1 AND zone = first_zone AS last_delete,
             appended_at <= clock_timestamp() - ${deleteGraceMs} * interval '1 millisecond' AS aged,
             appended_at, rn_zone
      FROM (SELECT start_pos, op, appended_at, zone,
                   row_number() OVER (PARTITION BY t, k, zone ORDER BY start_pos DESC) AS rn_zone,
                   row_number() OVER (PARTITION BY t, k ORDER BY start_pos DESC) AS rn_all,
                   min(zone) OVER (PARTITION BY t, k) AS first_zone
            FROM ev) w
    ),
    ${deleteAndCount(streamId, sql`SELECT start_pos FROM ranked WHERE rn_zone > 1 OR (last_delete AND aged)`)}
    SELECT (SELECT ok FROM l) AS ok, (SELECT count(*) FROM gone) AS n, (SELECT coalesce(sum(len), 0) FROM gone) AS bytes,
      (SELECT (min(appended_at) + ${deleteGraceMs} * interval '1 millisecond')::text FROM ranked WHERE rn_zone = 1 AND last_delete AND NOT aged) AS wake`, PREPARED);
  if (!rows[0]?.ok) return undefined;
  return { rows: Number(rows[0].n), bytes: Number(rows[0].bytes), graceWake: (rows[0].wake as string | null) ?? null };
}
