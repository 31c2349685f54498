// Request header grammar (PROTOCOL 4.1, 5.1, 5.2, 5.2.1), checked with TypeBox schemas.
import { Type, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { BadRequest } from "./errors.ts";
import type { ProducerHeaders } from "./producer.ts";

const NonNegativeInteger = Type.String({ pattern: "^(0|[1-9][0-9]*)$" });
// RFC 3339 date-time; Date.parse then checks the calendar.
const Rfc3339 = Type.String({
  pattern: "^\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$",
});
const NonEmpty = Type.String({ minLength: 1 });

function check(schema: TSchema, value: string): boolean {
  return Value.Check(schema, value);
}

/** Stream-Closed is present only when its value is exactly "true", any case (4.1). */
export function isClosedHeader(value: string | null): boolean {
  return value !== null && value.trim().toLowerCase() === "true";
}

export function parseSafeInteger(name: string, value: string): number {
  if (!check(NonNegativeInteger, value)) throw new BadRequest(`${name} must be a non-negative integer`);
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
  if (ttl !== null) out.ttlSeconds = parseSafeInteger("Stream-TTL", ttl.trim());
  if (expiresAt !== null) {
    const v = expiresAt.trim();
    const ms = check(Rfc3339, v) ? Date.parse(v.replace(" ", "T")) : NaN;
    if (Number.isNaN(ms)) throw new BadRequest("Stream-Expires-At must be an RFC 3339 timestamp");
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
  if (!check(NonEmpty, id)) throw new BadRequest("Producer-Id must not be empty");
  return {
    id,
    epoch: parseSafeInteger("Producer-Epoch", epoch.trim()),
    seq: parseSafeInteger("Producer-Seq", seq.trim()),
  };
}
