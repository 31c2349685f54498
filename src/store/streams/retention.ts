// Retention's schedule in SQL (README "Retention and compaction"): the ds_retention rows the
// background pass claims from (migrations/0012), and how a visit is counted and paced. A
// stream is visited only when its policy can have something to remove: the oldest retained
// row has reached the age limit, a compacted delete's grace has ended, or appends since the
// last visit can matter (compaction, a size limit they may pass). Removal itself is in
// retention-remove.ts. Offsets never change: rows are deleted, nothing is renumbered.
import { OffsetGone } from "../../protocol/errors.ts";
import { formatOffset } from "../../protocol/offsets.ts";
import type { RetentionPolicy } from "../../protocol/retention.ts";
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";

/** The pass's statements are of constant text and run for every visit: planned once per connection. */
export const PREPARED = { prepare: true };

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
  /** The stream's tail when claimed: a visit looks at rows below it only. */
  tail: number;
  own: RetentionPolicy;
}

/** The database's clock: a pass claims streams due by its start, so it visits each once. */
export async function databaseNow(db: Db): Promise<string> {
  const rows = await db.rows<{ now: unknown }>(sql`SELECT clock_timestamp()::text AS now`);
  return String(rows[0].now);
}

/** Puts a new stream under a policy on the schedule (in the creating transaction). */
export async function scheduleStream(q: Queryable, streamId: number): Promise<void> {
  await q.rows(sql`INSERT INTO ds_retention (stream_id) VALUES (${streamId}) ON CONFLICT DO NOTHING`);
}

/**
 * Claims up to `limit` due streams: each one's schedule row is pushed `leaseMs` into the
 * future in the same statement, so no other instance claims it meanwhile. Only schedule rows
 * are locked (SKIP LOCKED, for this statement); the stream rows are read, never locked.
 */
export async function claimDue(db: Db, limit: number, leaseMs: number, dueBy: string): Promise<DueStream[]> {
  const rows = await db.rows<Record<string, unknown>>(sql`
    UPDATE ds_retention r SET due_at = clock_timestamp() + ${leaseMs} * interval '1 millisecond'
    FROM (SELECT d.stream_id FROM ds_retention d JOIN ds_streams t ON t.id = d.stream_id
          WHERE d.due_at <= ${dueBy}::timestamptz
            AND (d.seen_tail IS NULL OR d.wake_at <= ${dueBy}::timestamptz
                 OR (t.tail > d.seen_tail AND (d.on_append OR (d.size_limit IS NOT NULL
                     AND (t.is_json OR d.kept_bytes + (t.tail - d.seen_tail) > d.size_limit)))))
          ORDER BY d.due_at LIMIT ${limit} FOR UPDATE OF d SKIP LOCKED) due,
         ds_streams s
    WHERE r.stream_id = due.stream_id AND s.id = r.stream_id
    RETURNING s.id, s.path, s.is_json, s.earliest, s.fork_offset, s.tail, s.retention_max_age, s.retention_max_bytes, s.compaction`, PREPARED);
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({
    id: Number(r.id),
    path: (r.path as string | null) ?? null,
    isJson: Boolean(r.is_json),
    earliest: Number(r.earliest),
    forkOffset: n(r.fork_offset),
    tail: Number(r.tail),
    own: { maxAgeSeconds: n(r.retention_max_age), maxBytes: n(r.retention_max_bytes), compaction: r.compaction === "state" ? "state" : null },
  }));
}

/**
 * Counts the rows appended since the last visit (up to `tail`) into kept_bytes: the bytes
 * the stream stores below its tail, which removals then lower as they go. Reads only the new
 * rows. Returns the stored bytes.
 */
export async function countAppended(db: Db, streamId: number, tail: number): Promise<number> {
  const rows = await db.rows<{ kept: unknown }>(sql`
    UPDATE ds_retention r SET seen_tail = greatest(coalesce(r.seen_tail, 0), ${tail}),
      kept_bytes = r.kept_bytes + coalesce((SELECT sum(octet_length(c.data)) FROM ds_chunks c
        WHERE c.stream_id = r.stream_id AND c.start_pos >= coalesce(r.seen_tail, 0) AND c.start_pos < ${tail}), 0)
    WHERE r.stream_id = ${streamId} RETURNING r.kept_bytes AS kept`, PREPARED);
  return Number(rows[0]?.kept ?? 0);
}

export interface NextVisit {
  /** Not before this many ms from now (RETENTION_INTERVAL_MS). */
  paceMs: number;
  /** Due without appends at the earliest of these database times (age limit, delete grace); none: never. */
  wakes: string[];
  /** Whether any append makes the stream due. */
  onAppend: boolean;
  /** The size limit appends are measured against. */
  sizeLimit: number | null;
}

/** Ends a visit: paced, with what makes the stream due next. */
export async function finishVisit(db: Db, id: number, next: NextVisit): Promise<void> {
  await db.rows(sql`UPDATE ds_retention SET pass_at = clock_timestamp(),
      due_at = clock_timestamp() + ${next.paceMs}::bigint * interval '1 millisecond',
      wake_at = (SELECT min(w) FROM unnest(${pgArray(next.wakes)}::timestamptz[]) AS w), on_append = ${next.onAppend}, size_limit = ${next.sizeLimit}::bigint
    WHERE stream_id = ${id}`, PREPARED);
}

/** Takes a stream no policy applies to (any more) off the schedule. */
export async function unschedule(db: Db, id: number): Promise<void> {
  await db.tx(async (q) => {
    await q.rows(sql`DELETE FROM ds_retention WHERE stream_id = ${id}`);
    await q.rows(sql`UPDATE ds_streams SET retention_due_at = NULL WHERE id = ${id} AND retention_due_at IS NOT NULL`);
  });
}

/**
 * Puts streams an operator rule covers on the schedule: those with ids above `afterId`
 * whose path matches one of the rules' regexes (protocol/glob.ts). Returns the
 * highest id looked at, so the next call only looks at streams created since.
 */
export async function adoptRuleStreams(db: Db, regexes: string[], afterId: number): Promise<number> {
  const top = await db.rows<{ max: unknown }>(sql`SELECT max(id) AS max FROM ds_streams`);
  const maxId = Number(top[0]?.max ?? 0);
  if (regexes.length && maxId > afterId) {
    await db.rows(sql`WITH a AS (
        UPDATE ds_streams SET retention_due_at = clock_timestamp()
        WHERE id > ${afterId} AND id <= ${maxId} AND retention_due_at IS NULL AND path IS NOT NULL
          AND path ~ ANY(${pgArray(regexes)}::text[])
        RETURNING id)
      INSERT INTO ds_retention (stream_id) SELECT id FROM a ON CONFLICT DO NOTHING`);
  }
  return maxId;
}
