// What the subscription API accepts (PROTOCOL 6, 7): request bodies checked and normalised,
// with no I/O, so every rule here is unit-tested without a database
// (test/subscriptions/rules.test.ts). Stream keys are URL paths as sent
// ("/v1/stream/events/a"); bodies speak in stream-root-relative paths ("events/a").
import { createHash } from "node:crypto";
import { SubscriptionError } from "./errors.ts";
import { normalizeGlob } from "./glob.ts";
import { isOffsetToken, offsetPosition } from "./offsets.ts";
import { hasControlChars, isReservedPath, STREAM_PREFIX } from "./paths.ts";

export const BadRequestCode = (message: string) => new SubscriptionError("INVALID_REQUEST", message);
export const NotFound = (id: string) => new SubscriptionError("SUBSCRIPTION_NOT_FOUND", `subscription ${JSON.stringify(id)} not found`);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A relative path from a request body, checked and normalised (no leading/trailing slash).
 * `maxPathBytes` is MAX_PATH_BYTES: a stream key longer than a request path may be could
 * never be appended to.
 */
export function relativePath(value: unknown, field: string, maxPathBytes: number): string {
  if (typeof value !== "string") throw BadRequestCode(`${field} must be a string`);
  const path = value.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path.length === 0) throw BadRequestCode(`${field} must name a stream path`);
  if (STREAM_PREFIX.length + path.length > maxPathBytes) throw BadRequestCode(`${field} is too long`);
  if (hasControlChars(path)) throw BadRequestCode(`${field} contains control characters`);
  if (isReservedPath(path)) throw BadRequestCode(`${field} may not name the reserved __ds prefix`);
  return path;
}

export const streamKey = (relative: string) => `${STREAM_PREFIX}${relative}`;

export const relativeOf = (key: string) => (key.startsWith(STREAM_PREFIX) ? key.slice(STREAM_PREFIX.length) : key);

const MAX_ID = 256;
const MAX_WORKER = 256;

export function checkSubscriptionId(id: string): string {
  if (id.length === 0 || id.length > MAX_ID || hasControlChars(id)) {
    throw BadRequestCode(`subscription id must be 1 to ${MAX_ID} printable characters`);
  }
  return id;
}

export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw BadRequestCode("request body must be a JSON object");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw BadRequestCode("request body is not valid JSON");
  }
}

export type SubscriptionType = "webhook" | "pull-wake";

export interface SubscriptionConfig {
  type: SubscriptionType;
  pattern: string | null;
  /** Explicit relative paths, de-duplicated and sorted. */
  streams: string[];
  /** As given; the address rules (subscriptions/ssrf.ts) are the caller's to apply. */
  webhookUrl: string | null;
  wakeStream: string | null;
  leaseTtlMs: number;
  description: string | null;
  /** Of the canonical configuration: re-confirmation compares one hash instead of field by field. */
  hash: string;
}

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const MIN_LEASE_TTL_MS = 1_000;
export const MAX_LEASE_TTL_MS = 600_000;
const MAX_STREAMS = 10_000;
const MAX_DESCRIPTION = 4_096;
const KNOWN_FIELDS = new Set(["type", "pattern", "streams", "webhook", "wake_stream", "lease_ttl_ms", "description"]);

/** Explicit stream lists (create and POST .../streams): non-empty strings, normalised. */
export function parseStreamList(value: unknown, maxPathBytes: number, field = "streams"): string[] {
  if (!Array.isArray(value)) throw BadRequestCode(`${field} must be an array of stream paths`);
  if (value.length > MAX_STREAMS) throw BadRequestCode(`${field} may name at most ${MAX_STREAMS} streams`);
  return [...new Set(value.map((v, i) => relativePath(v, `${field}[${i}]`, maxPathBytes)))].sort();
}

/** A subscription's configuration from a PUT body (PROTOCOL 6.2). */
export function parseSubscriptionConfig(body: unknown, maxPathBytes: number): SubscriptionConfig {
  if (!isObject(body)) throw BadRequestCode("request body must be a JSON object");
  const unknown = Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length > 0) throw BadRequestCode(`unknown field(s): ${unknown.join(", ")}`);
  const type = body.type;
  if (type !== "webhook" && type !== "pull-wake") throw BadRequestCode('type must be "webhook" or "pull-wake"');
  const pattern = body.pattern === undefined || body.pattern === null ? null : normalizeGlob(relativePath(body.pattern, "pattern", maxPathBytes));
  if (pattern === undefined) throw BadRequestCode("pattern may have at most 32 segments and 4 ** segments");
  const streams = body.streams === undefined || body.streams === null ? [] : parseStreamList(body.streams, maxPathBytes);
  if (pattern === null && streams.length === 0) throw BadRequestCode("at least one of pattern or streams is required");

  const lease = body.lease_ttl_ms ?? DEFAULT_LEASE_TTL_MS;
  if (typeof lease !== "number" || !Number.isInteger(lease) || lease < MIN_LEASE_TTL_MS || lease > MAX_LEASE_TTL_MS) {
    throw BadRequestCode(`lease_ttl_ms must be an integer from ${MIN_LEASE_TTL_MS} to ${MAX_LEASE_TTL_MS}`);
  }
  const description = body.description ?? null;
  if (description !== null && (typeof description !== "string" || description.length > MAX_DESCRIPTION || description.includes("\u0000"))) {
    throw BadRequestCode(`description must be a string of at most ${MAX_DESCRIPTION} characters, without NUL`);
  }

  let webhookUrl: string | null = null;
  let wakeStream: string | null = null;
  if (type === "webhook") {
    if (body.wake_stream !== undefined && body.wake_stream !== null) throw BadRequestCode("wake_stream is for pull-wake subscriptions");
    const webhook = body.webhook;
    if (!isObject(webhook) || typeof webhook.url !== "string" || webhook.url.length === 0) {
      throw BadRequestCode("webhook subscriptions require webhook.url");
    }
    if (Object.keys(webhook).some((k) => k !== "url")) throw BadRequestCode("webhook accepts only url");
    webhookUrl = webhook.url;
  } else {
    if (body.webhook !== undefined && body.webhook !== null) throw BadRequestCode("webhook is for webhook subscriptions");
    if (body.wake_stream === undefined || body.wake_stream === null) throw BadRequestCode("pull-wake subscriptions require wake_stream");
    wakeStream = relativePath(body.wake_stream, "wake_stream", maxPathBytes);
  }

  const canonical = { type, pattern, streams, webhook: webhookUrl, wake_stream: wakeStream, lease_ttl_ms: lease, description };
  const hash = createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
  return { type, pattern, streams, webhookUrl, wakeStream, leaseTtlMs: lease, description, hash };
}

/** POST .../streams: `{"streams": [...]}` naming at least one stream. */
export function parseAddStreams(bytes: Uint8Array, maxPathBytes: number): string[] {
  const body = parseJsonBody(bytes);
  if (!isObject(body) || Object.keys(body).some((k) => k !== "streams")) throw BadRequestCode('body must be {"streams": [...]}');
  const paths = parseStreamList(body.streams, maxPathBytes);
  if (paths.length === 0) throw BadRequestCode("streams must name at least one stream");
  return paths;
}

/** DELETE .../streams/<path>: the stream key named by the percent-encoded last segment. */
export function parseRemovedStream(encodedPath: string, maxPathBytes: number): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encodedPath);
  } catch {
    throw BadRequestCode("stream path is not valid URL encoding");
  }
  return streamKey(relativePath(decoded, "stream path", maxPathBytes));
}

/** A pull-wake claim's `{"worker": "..."}`. */
export function parseClaimWorker(bytes: Uint8Array): string {
  const body = parseJsonBody(bytes);
  const worker = isObject(body) ? body.worker : undefined;
  if (typeof worker !== "string" || worker.length === 0 || worker.length > MAX_WORKER || hasControlChars(worker)) {
    throw BadRequestCode(`worker must be a non-empty string of at most ${MAX_WORKER} characters`);
  }
  return worker;
}

/** The bearer token of a callback, ack or release (Authorization header only, PROTOCOL 12.9). */
export function bearerToken(authorization: string | null): string {
  const m = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!m) throw new SubscriptionError("TOKEN_INVALID", "Authorization: Bearer <token> is required");
  return m[1];
}

/** A callback, ack or release body (PROTOCOL 7.1-7.2): which wake, and the acks as stream key -> position. */
export interface WakeCallBody {
  generation: number;
  wakeId: string;
  acks: Map<string, number>;
  done: boolean;
}

/** Body shape and ack offsets of a wake call; `acks` false for a release, which takes none. */
export function parseWakeCall(bytes: Uint8Array, acks: boolean, maxPathBytes: number): WakeCallBody {
  const body = parseJsonBody(bytes);
  if (!isObject(body)) throw BadRequestCode("request body must be a JSON object");
  const { wake_id, generation, done } = body;
  if (typeof wake_id !== "string" || !/^[\w-]{1,128}$/.test(wake_id)) throw BadRequestCode("wake_id must be a wake id this server issued");
  if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0) {
    throw BadRequestCode("generation must be a non-negative integer");
  }
  if (done !== undefined && typeof done !== "boolean") throw BadRequestCode("done must be a boolean");
  const positions = new Map<string, number>();
  if (body.acks !== undefined) {
    if (!acks) throw BadRequestCode("release takes no acks");
    if (!Array.isArray(body.acks)) throw BadRequestCode("acks must be an array");
    body.acks.forEach((a: unknown, i: number) => {
      if (!isObject(a)) throw BadRequestCode(`acks[${i}] must be an object`);
      const key = streamKey(relativePath(a.stream ?? a.path, `acks[${i}].stream`, maxPathBytes));
      if (typeof a.offset !== "string" || !isOffsetToken(a.offset) || !Number.isFinite(offsetPosition(a.offset))) {
        throw BadRequestCode(`acks[${i}].offset must be an offset this server issued`);
      }
      positions.set(key, Math.max(positions.get(key) ?? 0, offsetPosition(a.offset)));
    });
  }
  return { generation, wakeId: wake_id, acks: positions, done: done === true };
}
