// The stream row as the rest of the server sees it, and the SQL that selects it.
import { sql } from "../driver/db.ts";
import type { RetentionPolicy } from "../../protocol/retention.ts";

export interface StreamRecord {
  id: number;
  path: string | null;
  contentType: string;
  isJson: boolean;
  ttlSeconds: number | null;
  expiresAt: Date | null;
  tail: number;
  closed: boolean;
  closedBy: { id: string; epoch: number; seq: number } | null;
  lastSeq: string | null;
  forkSource: number | null;
  forkOffset: number | null;
  refCount: number;
  deleted: boolean;
  expired: boolean;
  /** The creator's retention and compaction policy as given on PUT (store/streams/retention.ts). */
  retention: RetentionPolicy;
  /** Earliest retained position (PROTOCOL 5.6): reads below it answer 410 Gone. */
  earliest: number;
  /** Whether a policy applies (own or an operator rule) or data was ever removed. */
  retained: boolean;
}


// Expiry is computed by Postgres so every instance agrees on one clock.
export const EXPIRED_SQL = (t: string) =>
  sql.raw(`((${t}.expires_at IS NOT NULL AND ${t}.expires_at <= clock_timestamp())
    OR (${t}.ttl_seconds IS NOT NULL AND ${t}.last_access + ${t}.ttl_seconds * interval '1 second' <= clock_timestamp()))`);

export const STREAM_COLUMNS = sql`s.id, s.path, s.content_type, s.is_json, s.ttl_seconds, s.expires_at,
  s.tail, s.closed, s.closed_by_id, s.closed_by_epoch, s.closed_by_seq, s.last_seq,
  s.fork_source, s.fork_offset, s.ref_count, s.deleted_at IS NOT NULL AS deleted, ${EXPIRED_SQL("s")} AS expired,
  s.retention_max_age, s.retention_max_bytes, s.compaction, s.earliest,
  (s.retention_due_at IS NOT NULL OR s.earliest > 0) AS retained`;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toStreamRecord(r: Record<string, unknown>): StreamRecord {
  return {
    id: num(r.id),
    path: (r.path as string | null) ?? null,
    contentType: r.content_type as string,
    isJson: Boolean(r.is_json),
    ttlSeconds: numOrNull(r.ttl_seconds),
    expiresAt: r.expires_at ? new Date(r.expires_at as string | Date) : null,
    tail: num(r.tail),
    closed: Boolean(r.closed),
    closedBy:
      r.closed_by_id === null || r.closed_by_id === undefined
        ? null
        : { id: r.closed_by_id as string, epoch: num(r.closed_by_epoch), seq: num(r.closed_by_seq) },
    lastSeq: (r.last_seq as string | null) ?? null,
    forkSource: numOrNull(r.fork_source),
    forkOffset: numOrNull(r.fork_offset),
    refCount: num(r.ref_count),
    deleted: Boolean(r.deleted),
    expired: Boolean(r.expired),
    retention: {
      maxAgeSeconds: numOrNull(r.retention_max_age),
      maxBytes: numOrNull(r.retention_max_bytes),
      compaction: r.compaction === "state" ? "state" : null,
    },
    earliest: num(r.earliest ?? 0),
    retained: Boolean(r.retained),
  };
}
