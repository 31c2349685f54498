// Read-only queries for the admin API (src/admin/): streams listed in path order with
// keyset pagination, one stream with its forks and producers. Path order is byte order
// (COLLATE "C", index ds_streams_path_c from migration 0004), so a page is one index range
// scan whatever the database's collation and however many streams there are.
import { type Queryable, sql } from "../driver/db.ts";
import { EXPIRED_SQL } from "../streams/records.ts";
import type { RetentionPolicy } from "../../protocol/retention.ts";

export interface StreamSummary {
  id: number;
  path: string;
  contentType: string;
  isJson: boolean;
  /** Tail position: bytes (binary) or messages (JSON), including data read from a fork source. */
  tail: number;
  /** Bytes of data this stream stores itself (not its fork source's). */
  storedBytes: number;
  createdAt: string;
  lastAccess: string;
  ttlSeconds: number | null;
  expiresAt: string | null;
  closed: boolean;
  forkSource: { id: number; path: string | null } | null;
  forkOffset: number | null;
  /** Forks still reading this stream's data. */
  refCount: number;
  deletedAt: string | null;
  /** The creator's retention and compaction policy (operator rules are added by the API). */
  retention: RetentionPolicy;
  /** Earliest retained position (notes/retention.md). */
  earliest: number;
  /** When the retention pass last finished on this stream. */
  retentionPassAt: string | null;
}

export interface ProducerState {
  producerId: string;
  epoch: number;
  lastSeq: number;
  updatedAt: string;
}

export interface StreamDetail extends StreamSummary {
  forks: StreamSummary[];
  producers: ProducerState[];
}

export interface ListQuery {
  /** Only paths starting with this (byte-wise). */
  prefix: string;
  /** Only paths after this one in byte order (the previous page's last path). */
  after: string | null;
  limit: number;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest string greater than every string that starts with `prefix`, in code point
 * order (which is UTF-8 byte order, the order of COLLATE "C"); null when there is none.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (points.length > 0 && points[points.length - 1] === MAX_CODE_POINT) points.pop();
  if (points.length === 0) return null;
  let last = points.pop()! + 1;
  if (last >= 0xd800 && last <= 0xdfff) last = 0xe000; // surrogates are not characters
  return String.fromCodePoint(...points, last);
}

// Expired streams are absent everywhere (the protocol's view); soft-deleted ones are
// listed with deletedAt set, since they still hold data that forks read.
const SUMMARY_COLUMNS = sql`s.id, s.path, s.content_type, s.is_json, s.tail, s.created_at, s.last_access,
  s.ttl_seconds, s.expires_at, s.closed, s.fork_source, s.fork_offset, s.ref_count, s.deleted_at,
  s.retention_max_age, s.retention_max_bytes, s.compaction, s.earliest,
  (SELECT r.pass_at FROM ds_retention r WHERE r.stream_id = s.id) AS retention_pass_at,
  f.path AS fork_source_path,
  -- binary positions count bytes, so what a stream stores itself is its own range; JSON
  -- positions count messages, so their bytes are summed (octet_length reads no TOAST data)
  CASE WHEN s.is_json
    THEN (SELECT coalesce(sum(octet_length(c.data)), 0) FROM ds_chunks c WHERE c.stream_id = s.id)
    ELSE s.tail - greatest(s.earliest, coalesce(s.fork_offset, 0)) END AS stored_bytes`;

/** The listing statement; exported so tests can EXPLAIN exactly what the API runs. */
export function listStreamsSql(q: ListQuery) {
  const upper = prefixUpperBound(q.prefix);
  const conditions = [sql`s.path IS NOT NULL`, sql`NOT ${EXPIRED_SQL("s")}`];
  if (q.prefix) conditions.push(sql`s.path COLLATE "C" >= ${q.prefix}`);
  if (q.prefix && upper !== null) conditions.push(sql`s.path COLLATE "C" < ${upper}`);
  if (q.after !== null) conditions.push(sql`s.path COLLATE "C" > ${q.after}`);
  // The page is chosen first (index range, LIMIT), and only its rows get the per-stream
  // columns that may read chunks.
  return sql`SELECT ${SUMMARY_COLUMNS}
    FROM (SELECT * FROM ds_streams s WHERE ${sql.join(conditions, sql` AND `)}
          ORDER BY s.path COLLATE "C" LIMIT ${q.limit}) s
    LEFT JOIN ds_streams f ON f.id = s.fork_source
    ORDER BY s.path COLLATE "C"`;
}

export async function listStreams(db: Queryable, q: ListQuery): Promise<StreamSummary[]> {
  const rows = await db.rows(listStreamsSql(q));
  return rows.map(toSummary);
}

/** One stream (soft-deleted included, expired absent) with its forks and producers. */
export async function describeStream(db: Queryable, path: string, maxForks = 100): Promise<StreamDetail | undefined> {
  const rows = await db.rows(sql`SELECT ${SUMMARY_COLUMNS}
    FROM ds_streams s LEFT JOIN ds_streams f ON f.id = s.fork_source
    WHERE s.path = ${path} AND NOT ${EXPIRED_SQL("s")}`);
  if (rows.length === 0) return undefined;
  const stream = toSummary(rows[0]);
  const [forks, producers] = await Promise.all([
    db.rows(sql`SELECT ${SUMMARY_COLUMNS}
      FROM ds_streams s LEFT JOIN ds_streams f ON f.id = s.fork_source
      WHERE s.fork_source = ${stream.id} AND s.path IS NOT NULL AND NOT ${EXPIRED_SQL("s")}
      ORDER BY s.path COLLATE "C" LIMIT ${maxForks}`),
    db.rows(sql`SELECT producer_id, epoch, last_seq, updated_at FROM ds_producers
      WHERE stream_id = ${stream.id} ORDER BY updated_at DESC LIMIT 100`),
  ]);
  return {
    ...stream,
    forks: forks.map(toSummary),
    producers: producers.map((r) => ({
      producerId: String(r.producer_id),
      epoch: Number(r.epoch),
      lastSeq: Number(r.last_seq),
      updatedAt: iso(r.updated_at)!,
    })),
  };
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return new Date(v as string | Date).toISOString();
}

function toSummary(r: Record<string, unknown>): StreamSummary {
  return {
    id: Number(r.id),
    path: String(r.path),
    contentType: String(r.content_type),
    isJson: Boolean(r.is_json),
    tail: Number(r.tail),
    storedBytes: Number(r.stored_bytes),
    createdAt: iso(r.created_at)!,
    lastAccess: iso(r.last_access)!,
    ttlSeconds: r.ttl_seconds === null ? null : Number(r.ttl_seconds),
    expiresAt: iso(r.expires_at),
    closed: Boolean(r.closed),
    forkSource: r.fork_source === null ? null : { id: Number(r.fork_source), path: (r.fork_source_path as string | null) ?? null },
    forkOffset: r.fork_offset === null ? null : Number(r.fork_offset),
    refCount: Number(r.ref_count),
    deletedAt: iso(r.deleted_at),
    retention: {
      maxAgeSeconds: r.retention_max_age === null ? null : Number(r.retention_max_age),
      maxBytes: r.retention_max_bytes === null ? null : Number(r.retention_max_bytes),
      compaction: r.compaction === "state" ? "state" : null,
    },
    earliest: Number(r.earliest ?? 0),
    retentionPassAt: iso(r.retention_pass_at),
  };
}
