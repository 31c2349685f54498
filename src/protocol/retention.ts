// Retention and compaction policies (PROTOCOL 4 "Retention"; an extension of 5.1): the
// creator's request headers, and how an operator rule and the creator's policy combine.
import { BadRequest } from "./errors.ts";
import { parseSafeInteger } from "./headers.ts";

/** Limits a stream's data is held to; null means no limit of that kind. */
export interface RetentionPolicy {
  maxAgeSeconds: number | null;
  maxBytes: number | null;
  /** "state": keep only the latest State Protocol change per (type, key). */
  compaction: "state" | null;
}

export const NO_POLICY: RetentionPolicy = { maxAgeSeconds: null, maxBytes: null, compaction: null };

/** Longest age accepted: 1,000 years, as for Stream-TTL (Postgres intervals stay in range). */
const MAX_AGE_SECONDS = 1000 * 365.25 * 24 * 3600;

/** Stream-Retention-Max-Age (seconds, at least 1), Stream-Retention-Max-Bytes (at least 1), Stream-Compaction. */
export function parseRetentionHeaders(h: Headers): RetentionPolicy {
  const age = h.get("stream-retention-max-age");
  const bytes = h.get("stream-retention-max-bytes");
  const compaction = h.get("stream-compaction");
  const out: RetentionPolicy = { ...NO_POLICY };
  if (age !== null) {
    out.maxAgeSeconds = parseSafeInteger("Stream-Retention-Max-Age", age.trim());
    if (out.maxAgeSeconds < 1 || out.maxAgeSeconds > MAX_AGE_SECONDS) {
      throw new BadRequest(`Stream-Retention-Max-Age must be between 1 and ${MAX_AGE_SECONDS} seconds`);
    }
  }
  if (bytes !== null) {
    out.maxBytes = parseSafeInteger("Stream-Retention-Max-Bytes", bytes.trim());
    if (out.maxBytes < 1) throw new BadRequest("Stream-Retention-Max-Bytes must be at least 1");
  }
  if (compaction !== null) {
    if (compaction.trim().toLowerCase() !== "state") throw new BadRequest("Stream-Compaction must be state");
    out.compaction = "state";
  }
  return out;
}

export function samePolicy(a: RetentionPolicy, b: RetentionPolicy): boolean {
  return a.maxAgeSeconds === b.maxAgeSeconds && a.maxBytes === b.maxBytes && a.compaction === b.compaction;
}

export function hasPolicy(p: RetentionPolicy): boolean {
  return p.maxAgeSeconds !== null || p.maxBytes !== null || p.compaction !== null;
}

const smaller = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));

/** The stricter of two policies, limit by limit: the smaller bound, compaction if either asks. */
export function stricter(a: RetentionPolicy, b: RetentionPolicy): RetentionPolicy {
  return {
    maxAgeSeconds: smaller(a.maxAgeSeconds, b.maxAgeSeconds),
    maxBytes: smaller(a.maxBytes, b.maxBytes),
    compaction: a.compaction ?? b.compaction,
  };
}
