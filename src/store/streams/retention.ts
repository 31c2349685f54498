// Retention and compaction in SQL (notes/retention.md): the due list the background pass
// claims from, where a policy cuts a stream, and removal of whole chunk rows in small
// transactions. Offsets never change: rows are deleted, nothing is renumbered.
import { OffsetGone } from "../../protocol/errors.ts";
import { formatOffset } from "../../protocol/offsets.ts";
import type { RetentionPolicy } from "../../protocol/retention.ts";
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";

/** A read at `from` below the earliest retained position is 410 Gone (PROTOCOL 5.6). */
export function assertRetained(stream: { earliest: number }, from: number): void {
  if (from < stream.earliest) throw new OffsetGone(formatOffset(stream.earliest));
}

export interface DueStream {
  id: number;
  path: string | null;
  isJson: boolean;
  earliest: number;
  forkOffset: number | null;
  own: RetentionPolicy;
}

/** The database's clock: a pass claims streams due by its start, so it visits each once. */
export async function databaseNow(db: Db): Promise<string> {
  const rows = await db.rows<{ now: unknown }>(sql`SELECT clock_timestamp()::text AS now`);
  return String(rows[0].now);
}

/**
 * Claims up to `limit` due streams for one pass: each is pushed `leaseMs` into the future
 * in the same statement, so no other instance claims it meanwhile, and SKIP LOCKED passes
 * over a row an append holds instead of waiting for it. The row lock lasts this statement.
 */
export async function claimDue(db: Db, limit: number, leaseMs: number, dueBy: string): Promise<DueStream[]> {
  const rows = await db.rows<Record<string, unknown>>(sql`
    UPDATE ds_streams s SET retention_due_at = clock_timestamp() + ${leaseMs} * interval '1 millisecond'
    WHERE s.id IN (SELECT id FROM ds_streams WHERE retention_due_at <= ${dueBy}::timestamptz
                   ORDER BY retention_due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING s.id, s.path, s.is_json, s.earliest, s.fork_offset, s.retention_max_age, s.retention_max_bytes, s.compaction`);
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({
    id: Number(r.id),
    path: (r.path as string | null) ?? null,
    isJson: Boolean(r.is_json),
    earliest: Number(r.earliest),
    forkOffset: n(r.fork_offset),
    own: { maxAgeSeconds: n(r.retention_max_age), maxBytes: n(r.retention_max_bytes), compaction: r.compaction === "state" ? "state" : null },
  }));
}

/** Ends a stream's pass: due again after `nextMs`, or off the due list when no policy applies. */
export async function finishPass(db: Db, id: number, nextMs: number | null): Promise<void> {
  await db.rows(sql`UPDATE ds_streams SET retention_pass_at = clock_timestamp(),
      retention_due_at = CASE WHEN ${nextMs}::bigint IS NULL THEN NULL ELSE clock_timestamp() + ${nextMs}::bigint * interval '1 millisecond' END
    WHERE id = ${id}`);
}

/**
 * Puts streams an operator rule covers on the due list: those with ids above `afterId`
 * whose path matches one of the rules' regexes (protocol/glob.ts). Returns the
 * highest id looked at, so the next call only looks at streams created since.
 */
export async function adoptRuleStreams(db: Db, regexes: string[], afterId: number): Promise<number> {
  const top = await db.rows<{ max: unknown }>(sql`SELECT max(id) AS max FROM ds_streams`);
  const maxId = Number(top[0]?.max ?? 0);
  if (regexes.length && maxId > afterId) {
    await db.rows(sql`UPDATE ds_streams SET retention_due_at = clock_timestamp()
      WHERE id > ${afterId} AND id <= ${maxId} AND retention_due_at IS NULL AND path IS NOT NULL
        AND path ~ ANY(${pgArray(regexes)}::text[])`);
  }
  return maxId;
}

/**
 * Where the policy cuts the stream: the first position to keep, always a row's start (or
 * the end of the last row), so no message is ever cut apart and rows of small appends
 * that share a row go together. Only the stream's own rows (from its fork point) count:
 * what a fork inherits follows its source's policy. Never moves backwards.
 */
export async function retentionCut(q: Queryable, s: DueStream, policy: RetentionPolicy): Promise<number> {
  const lo = Math.max(s.earliest, s.forkOffset ?? 0);
  let cut = lo;
  if (policy.maxAgeSeconds !== null) {
    // The first row young enough to keep, else the end of the last row (all of it is old).
    const rows = await q.rows<{ cut: unknown }>(sql`SELECT coalesce(
        (SELECT start_pos FROM ds_chunks WHERE stream_id = ${s.id} AND start_pos >= ${lo}
           AND appended_at > clock_timestamp() - ${policy.maxAgeSeconds} * interval '1 second'
         ORDER BY start_pos LIMIT 1),
        (SELECT max(end_pos) FROM ds_chunks WHERE stream_id = ${s.id})) AS cut`);
    if (rows[0]?.cut !== null && rows[0]?.cut !== undefined) cut = Math.max(cut, Number(rows[0].cut));
  }
  if (policy.maxBytes !== null) {
    // The longest suffix of rows within the limit; the newest row is always kept. Sizes come
    // from octet_length, which reads no TOAST data.
    const rows = await q.rows<{ cut: unknown }>(sql`SELECT coalesce(min(start_pos) FILTER (WHERE suffix <= ${policy.maxBytes}), max(start_pos)) AS cut
      FROM (SELECT start_pos, sum(octet_length(data)) OVER (ORDER BY start_pos DESC) AS suffix
            FROM ds_chunks WHERE stream_id = ${s.id} AND start_pos >= ${lo}) w`);
    if (rows[0]?.cut !== null && rows[0]?.cut !== undefined) cut = Math.max(cut, Number(rows[0].cut));
  }
  return cut;
}

export interface Removed {
  rows: number;
  bytes: number;
}

const SKIPPED: Removed = { rows: 0, bytes: 0 };

/**
 * One short transaction: deletes up to `batch` rows below `cut`, then moves the earliest
 * offset past them and cuts the view of forks that read them (the fork decision in
 * notes/retention.md). The advisory lock keeps two instances off one stream; the stream
 * row is updated last so appends wait on it only until the commit. Returns undefined
 * when another pass holds the stream.
 */
export async function removeBelow(db: Db, streamId: number, lo: number, cut: number, batch: number): Promise<{ removed: Removed; earliest: number; done: boolean } | undefined> {
  return db.tx(async (q) => {
    if (!(await lockStream(q, db.schema, streamId))) return undefined;
    const rows = await q.rows<{ n: unknown; bytes: unknown; top: unknown }>(sql`
      WITH gone AS (
        DELETE FROM ds_chunks WHERE stream_id = ${streamId} AND start_pos IN (
          SELECT start_pos FROM ds_chunks WHERE stream_id = ${streamId} AND start_pos >= ${lo} AND start_pos < ${cut}
          ORDER BY start_pos LIMIT ${batch})
        RETURNING end_pos, octet_length(data) AS len)
      SELECT count(*) AS n, coalesce(sum(len), 0) AS bytes, max(end_pos) AS top FROM gone`);
    const n = Number(rows[0]?.n ?? 0);
    const done = n < batch;
    const earliest = done ? cut : Number(rows[0].top);
    await moveEarliest(q, streamId, earliest);
    return { removed: { rows: n, bytes: Number(rows[0]?.bytes ?? 0) }, earliest, done };
  });
}

/** Raises a stream's earliest offset, and that of every fork (and fork of a fork) reading below it. */
async function moveEarliest(q: Queryable, streamId: number, earliest: number): Promise<void> {
  await q.rows(sql`UPDATE ds_streams SET earliest = ${earliest} WHERE id = ${streamId} AND earliest < ${earliest}`);
  await q.rows(sql`
    WITH RECURSIVE f AS (
      SELECT id, least(${earliest}::bigint, fork_offset) AS e FROM ds_streams WHERE fork_source = ${streamId}
      UNION ALL
      SELECT s.id, least(f.e, s.fork_offset) FROM ds_streams s JOIN f ON s.fork_source = f.id
    )
    UPDATE ds_streams s SET earliest = f.e FROM f WHERE s.id = f.id AND s.earliest < f.e`);
}

async function lockStream(q: Queryable, schema: string, streamId: number): Promise<boolean> {
  const rows = await q.rows<{ ok: boolean }>(sql`SELECT pg_try_advisory_xact_lock(hashtext(${`ds_retention:${schema}`}), ${streamId}::int) AS ok`);
  return Boolean(rows[0]?.ok);
}

/**
 * The rows of a State Protocol stream that compaction may drop (STATE-PROTOCOL.md): a
 * change event (an object with string `type` and `key` and headers.operation insert,
 * update, upsert or delete) that a later change of the same (type, key) supersedes, and a
 * delete that is its key's last change and older than the grace period, with no earlier
 * change of the key left to resurrect. Anything else (control events, other messages) is
 * never listed. Forks read this stream's rows below their fork points, so a change counts
 * as superseded only by one below the same fork points ("zones"): every fork still reads a
 * history that materializes to the same state. Read without locks; later appends only
 * supersede more, so the list stays right while it is deleted.
 */
export async function supersededRows(q: Queryable, streamId: number, lo: number, deleteGraceMs: number): Promise<number[]> {
  const rows = await q.rows<{ start_pos: unknown }>(sql`
    WITH RECURSIVE forks AS (
      SELECT id, fork_offset AS point FROM ds_streams WHERE fork_source = ${streamId}
      UNION ALL
      SELECT s.id, least(f.point, s.fork_offset) FROM ds_streams s JOIN forks f ON s.fork_source = f.id
    ), points AS (SELECT coalesce(array_agg(DISTINCT point), '{}') AS p FROM forks),
    ev AS (
      SELECT start_pos, appended_at, j->'type' AS t, j->'key' AS k, j->'headers'->>'operation' AS op,
             (SELECT count(*) FROM unnest((SELECT p FROM points)) AS fp WHERE fp <= start_pos) AS zone
      FROM (SELECT start_pos, appended_at, ds_message_jsonb(data) AS j FROM ds_chunks
            WHERE stream_id = ${streamId} AND start_pos >= ${lo}) c
      WHERE jsonb_typeof(j) = 'object' AND jsonb_typeof(j->'type') = 'string' AND jsonb_typeof(j->'key') = 'string'
        AND jsonb_typeof(j->'headers') = 'object' AND j->'headers'->>'operation' IN ('insert', 'update', 'upsert', 'delete')
    ), ranked AS (
      SELECT start_pos, op, appended_at, zone,
             row_number() OVER (PARTITION BY t, k, zone ORDER BY start_pos DESC) AS rn_zone,
             row_number() OVER (PARTITION BY t, k ORDER BY start_pos DESC) AS rn_all,
             min(zone) OVER (PARTITION BY t, k) AS first_zone
      FROM ev
    )
    SELECT start_pos FROM ranked
    WHERE rn_zone > 1
       OR (op = 'delete' AND rn_all = 1 AND zone = first_zone
           AND appended_at <= clock_timestamp() - ${deleteGraceMs} * interval '1 millisecond')
    ORDER BY start_pos`);
  return rows.map((r) => Number(r.start_pos));
}

/** Deletes listed rows (one batch) in a short transaction; undefined when another pass holds the stream. */
export async function removeRows(db: Db, streamId: number, starts: number[]): Promise<Removed | undefined> {
  if (starts.length === 0) return SKIPPED;
  return db.tx(async (q) => {
    if (!(await lockStream(q, db.schema, streamId))) return undefined;
    const rows = await q.rows<{ n: unknown; bytes: unknown }>(sql`
      WITH gone AS (DELETE FROM ds_chunks WHERE stream_id = ${streamId} AND start_pos = ANY(${pgArray(starts)}::int8[])
                    RETURNING octet_length(data) AS len)
      SELECT count(*) AS n, coalesce(sum(len), 0) AS bytes FROM gone`);
    return { rows: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
  });
}
