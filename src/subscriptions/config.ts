// A subscription's configuration from a PUT body (PROTOCOL 6.2): checked, normalised, and
// hashed, so re-confirmation compares one hash instead of field by field.
import { createHash } from "node:crypto";
import { BadRequestCode } from "./errors.ts";
import { normalizeGlob } from "./glob.ts";
import { relativePath } from "./paths.ts";
import { checkWebhookUrl, type TargetPolicy } from "./ssrf.ts";

export type SubscriptionType = "webhook" | "pull-wake";

export interface SubscriptionConfig {
  type: SubscriptionType;
  pattern: string | null;
  /** Explicit relative paths, de-duplicated and sorted. */
  streams: string[];
  webhookUrl: string | null;
  wakeStream: string | null;
  leaseTtlMs: number;
  description: string | null;
  hash: string;
}

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const MIN_LEASE_TTL_MS = 1_000;
export const MAX_LEASE_TTL_MS = 600_000;
const MAX_STREAMS = 10_000;
const MAX_DESCRIPTION = 4_096;
const KNOWN_FIELDS = new Set(["type", "pattern", "streams", "webhook", "wake_stream", "lease_ttl_ms", "description"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw BadRequestCode("request body must be a JSON object");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw BadRequestCode("request body is not valid JSON");
  }
}

/** Explicit stream lists (create and POST .../streams): non-empty strings, normalised. */
export function parseStreamList(value: unknown, field = "streams"): string[] {
  if (!Array.isArray(value)) throw BadRequestCode(`${field} must be an array of stream paths`);
  if (value.length > MAX_STREAMS) throw BadRequestCode(`${field} may name at most ${MAX_STREAMS} streams`);
  return [...new Set(value.map((v, i) => relativePath(v, `${field}[${i}]`)))].sort();
}

export function parseSubscriptionConfig(body: unknown, policy?: TargetPolicy): SubscriptionConfig {
  if (!isObject(body)) throw BadRequestCode("request body must be a JSON object");
  const unknown = Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length > 0) throw BadRequestCode(`unknown field(s): ${unknown.join(", ")}`);
  const type = body.type;
  if (type !== "webhook" && type !== "pull-wake") throw BadRequestCode('type must be "webhook" or "pull-wake"');
  const pattern = body.pattern === undefined || body.pattern === null ? null : normalizeGlob(relativePath(body.pattern, "pattern"));
  if (pattern === undefined) throw BadRequestCode("pattern may have at most 32 segments and 4 ** segments");
  const streams = body.streams === undefined || body.streams === null ? [] : parseStreamList(body.streams);
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
    webhookUrl = checkWebhookUrl(webhook.url, policy);
  } else {
    if (body.webhook !== undefined && body.webhook !== null) throw BadRequestCode("webhook is for webhook subscriptions");
    if (body.wake_stream === undefined || body.wake_stream === null) throw BadRequestCode("pull-wake subscriptions require wake_stream");
    wakeStream = relativePath(body.wake_stream, "wake_stream");
  }

  const canonical = { type, pattern, streams, webhook: webhookUrl, wake_stream: wakeStream, lease_ttl_ms: lease, description };
  const hash = createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
  return { type, pattern, streams, webhookUrl, wakeStream, leaseTtlMs: lease, description, hash };
}
