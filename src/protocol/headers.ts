// Request header grammar (PROTOCOL 4.1, 5.1, 5.2, 5.2.1), checked with TypeBox schemas.
import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { BadRequest } from "./errors.ts";
import { isOffsetToken } from "./offsets.ts";
import type { ProducerHeaders } from "./producer.ts";

// Compiled once: Value.Check builds the pattern's RegExp again on every call, three times
// per producer append.
const NonNegativeInteger = TypeCompiler.Compile(Type.String({ pattern: "^(0|[1-9][0-9]*)$" }));
// RFC 3339 date-time; the fields are then checked against the calendar (validDateTime).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
/** Longest sliding TTL accepted: 1,000 years (Postgres intervals and timestamps stay in range). */
export const MAX_TTL_SECONDS = 1000 * 365.25 * 24 * 3600;
// Timestamps Postgres (and every client's date library) can hold: years 1 to 9999 in UTC.
const MIN_EXPIRY_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_EXPIRY_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Parses an RFC 3339 timestamp, refusing dates the calendar does not have (2024-02-30). */
function parseDateTime(v: string): number {
  const m = RFC3339.exec(v);
  if (!m) return NaN;
  const [year, month, day, hour, minute, second, , oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeap(year) ? 1 : 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return NaN;
  if (hour > 23 || minute > 59 || second > 59 || oh > 23 || om > 59) return NaN;
  const ms = Date.parse(v.replace(" ", "T"));
  return ms >= MIN_EXPIRY_MS && ms <= MAX_EXPIRY_MS ? ms : NaN;
}

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const NonEmpty = TypeCompiler.Compile(Type.String({ minLength: 1 }));

/** Stream-Closed is present only when its value is exactly "true", any case (4.1). */
export function isClosedHeader(value: string | null): boolean {
  return value !== null && value.trim().toLowerCase() === "true";
}

export function parseSafeInteger(name: string, value: string): number {
  if (!NonNegativeInteger.Check(value)) throw new BadRequest(`${name} must be a non-negative integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new BadRequest(`${name} must be at most 2^53-1`);
  return n;
}

export interface ExpiryHeaders {
  ttlSeconds: number | null;
  expiresAt: Date | null;
}

export function parseExpiry(ttl: string | null, expiresAt: string | null): ExpiryHeaders {
  if (ttl !== null && expiresAt !== null) {
    throw new BadRequest("Stream-TTL and Stream-Expires-At cannot be used together");
  }
  const out: ExpiryHeaders = { ttlSeconds: null, expiresAt: null };
  if (ttl !== null) {
    out.ttlSeconds = parseSafeInteger("Stream-TTL", ttl.trim());
    if (out.ttlSeconds > MAX_TTL_SECONDS) throw new BadRequest(`Stream-TTL must be at most ${MAX_TTL_SECONDS} seconds`);
  }
  if (expiresAt !== null) {
    const ms = parseDateTime(expiresAt.trim());
    if (Number.isNaN(ms)) {
      throw new BadRequest("Stream-Expires-At must be a valid RFC 3339 timestamp between years 0001 and 9999");
    }
    out.expiresAt = new Date(ms);
  }
  return out;
}

/** All three producer headers or none (5.2.1). */
export function parseProducer(id: string | null, epoch: string | null, seq: string | null): ProducerHeaders | undefined {
  if (id === null && epoch === null && seq === null) return undefined;
  if (id === null || epoch === null || seq === null) {
    throw new BadRequest("Producer-Id, Producer-Epoch and Producer-Seq must be sent together");
  }
  if (!NonEmpty.Check(id)) throw new BadRequest("Producer-Id must not be empty");
  return {
    id,
    epoch: parseSafeInteger("Producer-Epoch", epoch.trim()),
    seq: parseSafeInteger("Producer-Seq", seq.trim()),
  };
}

/**
 * Stream-Expected-Offset (compare-and-append extension): an offset token as this server
 * returns in Stream-Next-Offset. The read sentinels -1 and now name no tail, so they are
 * malformed here too.
 */
export function parseExpectedOffset(value: string | null): string | null {
  if (value === null) return null;
  const v = value.trim();
  if (!isOffsetToken(v)) throw new BadRequest("Stream-Expected-Offset must be an offset as returned in Stream-Next-Offset");
  return v;
}
