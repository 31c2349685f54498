// The admin API behind the Inspector page: JSON views of streams for people, outside the
// protocol's stream root (/v1/stream/) so no stream path can collide with it. Read-only:
// the page changes streams through the protocol itself. Reading here never resets a TTL.
import { Buffer } from "node:buffer";
import { BadRequest, StreamNotFound } from "../protocol/errors.ts";
import { isTextForSse } from "../protocol/content-type.ts";
import { formatOffset, isOffsetToken, offsetPosition } from "../protocol/offsets.ts";
import type { StreamRecord, StreamSummary } from "../store/index.ts";
import { type AppContext, STREAM_PREFIX } from "../http/context.ts";
import { respond } from "../http/respond.ts";
import { NO_POLICY, stricter } from "../protocol/retention.ts";
import type { RetentionRules } from "../retention/rules.ts";

export const ADMIN_STREAMS = "/v1/admin/streams";
export const ADMIN_CONTENT = "/v1/admin/content/";

const LIST_LIMIT = { default: 50, max: 1000 };
// Content pages count messages for JSON streams and bytes for the others.
const JSON_LIMIT = { default: 100, max: 1000 };
const BYTES_LIMIT = { default: 4096, max: 1024 * 1024 };

export function json(body: unknown): Response {
  return respond(200, { "Content-Type": "application/json", "Cache-Control": "no-store" }, JSON.stringify(body));
}

/** One query parameter, at most once. */
export function param(url: URL, name: string): string | null {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) throw new BadRequest(`${name} may be given once`);
  return all[0] ?? null;
}

export function intParam(url: URL, name: string, range: { default: number; max: number }): number {
  const v = param(url, name);
  if (v === null || v === "") return range.default;
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1 || Number(v) > range.max) {
    throw new BadRequest(`${name} must be an integer from 1 to ${range.max}`);
  }
  return Number(v);
}

function nameParam(ctx: AppContext, url: URL, name: string): string | null {
  const v = param(url, name);
  if (v !== null && STREAM_PREFIX.length + v.length > ctx.config.MAX_PATH_BYTES) throw new BadRequest(`${name} is too long`);
  // Postgres text cannot hold NUL; no stream name can contain one either.
  if (v?.includes("\u0000")) throw new BadRequest(`${name} must not contain NUL characters`);
  return v;
}

/** A stream as the admin API shows it: offsets as the protocol's tokens, names without the root. */
function view(s: StreamSummary, rules?: RetentionRules) {
  return {
    name: s.path.slice(STREAM_PREFIX.length),
    path: s.path,
    contentType: s.contentType,
    kind: kindOf(s),
    tailOffset: formatOffset(s.tail),
    tailPosition: s.tail,
    messageCount: s.isJson ? s.tail : null,
    storedBytes: s.storedBytes,
    createdAt: s.createdAt,
    lastAccess: s.lastAccess,
    ttlSeconds: s.ttlSeconds,
    expiresAt: s.expiresAt,
    closed: s.closed,
    forkedFrom: s.forkSource
      ? { path: s.forkSource.path, name: s.forkSource.path?.slice(STREAM_PREFIX.length) ?? null, offset: formatOffset(s.forkOffset ?? 0) }
      : null,
    forkCount: s.refCount,
    deleted: s.deletedAt !== null,
    deletedAt: s.deletedAt,
    retention: {
      own: s.retention,
      // What the pass applies: the stricter of the stream's own policy and the operator's rules.
      effective: stricter(s.retention, rules?.policyFor(s.path) ?? NO_POLICY),
      earliestOffset: formatOffset(s.earliest),
      earliestPosition: s.earliest,
      lastPassAt: s.retentionPassAt,
    },
  };
}

function kindOf(s: { isJson: boolean; contentType: string }): "json" | "text" | "binary" {
  if (s.isJson) return "json";
  return isTextForSse(s.contentType) ? "text" : "binary";
}

/** GET /v1/admin/streams?prefix=&after=&limit= : one page in path order, `next` for the following one. */
export async function handleList(ctx: AppContext, url: URL): Promise<Response> {
  const prefix = nameParam(ctx, url, "prefix") ?? "";
  const after = nameParam(ctx, url, "after");
  const limit = intParam(url, "limit", LIST_LIMIT);
  // One row more than asked tells whether another page exists.
  const rows = await ctx.store.list({
    prefix: STREAM_PREFIX + prefix,
    after: after === null ? null : STREAM_PREFIX + after,
    limit: limit + 1,
  });
  const page = rows.slice(0, limit).map((r) => view(r, ctx.retentionRules));
  return json({ streams: page, next: rows.length > limit ? page[page.length - 1].name : null });
}

/** GET /v1/admin/streams/{name}: one stream, its forks, and this instance's live readers of it. */
export async function handleDescribe(ctx: AppContext, url: URL): Promise<Response> {
  const path = pathFrom(ctx, url, `${ADMIN_STREAMS}/`);
  const s = await ctx.store.describe(path);
  if (!s) throw new StreamNotFound();
  return json({
    ...view(s, ctx.retentionRules),
    forks: s.forks.map((f) => view(f, ctx.retentionRules)),
    producers: s.producers,
    liveReaders: { sse: ctx.sse.readersOn(s.id), longPoll: ctx.notifier.longPollsOn(s.id) },
  });
}

/**
 * GET /v1/admin/content/{name}?offset=&limit= : a page of stored data from any offset (a
 * protocol offset, -1, or a plain position), each item with its own offset. JSON messages
 * come as their text; other data as base64, cut at `limit` bytes.
 */
export async function handleContent(ctx: AppContext, url: URL): Promise<Response> {
  const stream = await ctx.store.find(pathFrom(ctx, url, ADMIN_CONTENT));
  if (!stream || stream.expired) throw new StreamNotFound();
  // The Inspector pages from the earliest retained position rather than failing with 410.
  const from = Math.max(startPosition(param(url, "offset")), stream.earliest);
  if (from > stream.tail) throw new BadRequest("offset is beyond the end of the stream");
  const kind = kindOf(stream);
  const items =
    kind === "json"
      ? await readMessages(ctx, stream, from, intParam(url, "limit", JSON_LIMIT))
      : await readBytes(ctx, stream, from, intParam(url, "limit", BYTES_LIMIT));
  const next = items.length ? items[items.length - 1].end : from;
  return json({
    kind,
    contentType: stream.contentType,
    offset: formatOffset(from),
    position: from,
    nextOffset: formatOffset(next),
    nextPosition: next,
    tailOffset: formatOffset(stream.tail),
    tailPosition: stream.tail,
    earliestOffset: formatOffset(stream.earliest),
    closed: stream.closed,
    items: items.map((i) => ({
      offset: formatOffset(i.start),
      position: i.start,
      ...(kind === "json" ? { text: new TextDecoder().decode(i.data) } : { base64: Buffer.from(i.data).toString("base64") }),
    })),
  });
}

interface Item {
  start: number;
  end: number;
  data: Uint8Array;
}

async function readMessages(ctx: AppContext, stream: StreamRecord, from: number, limit: number): Promise<Item[]> {
  const items: Item[] = [];
  let next = from;
  // Small messages are the common case: ask for about what the page needs, then more.
  let budget = Math.max(4096, limit * 256);
  while (items.length < limit && next < stream.tail) {
    const { units, starts, next: after } = await ctx.store.read(stream, next, Math.min(budget, ctx.config.READ_CHUNK_BYTES));
    if (units.length === 0) break;
    // Compaction may leave gaps between messages: each keeps the position it was stored at.
    units.slice(0, limit - items.length).forEach((data, i) => items.push({ start: starts?.[i] ?? next + i, end: (starts?.[i] ?? next + i) + 1, data }));
    next = items.length < limit ? after : items[items.length - 1].end;
    budget *= 2;
  }
  return items;
}

async function readBytes(ctx: AppContext, stream: StreamRecord, from: number, limit: number): Promise<Item[]> {
  const items: Item[] = [];
  let next = from;
  let left = limit;
  while (left > 0 && next < stream.tail) {
    const { units } = await ctx.store.read(stream, next, Math.min(left, ctx.config.READ_CHUNK_BYTES));
    if (units.length === 0) break;
    for (const unit of units) {
      // A read returns whole appends; the page ends exactly at `limit` bytes.
      const data = unit.subarray(0, left);
      items.push({ start: next, end: next + data.byteLength, data });
      next += data.byteLength;
      left -= data.byteLength;
      if (left === 0) break;
    }
  }
  return items;
}

function startPosition(offset: string | null): number {
  if (offset === null || offset === "" || offset === "-1") return 0;
  if (/^\d{1,15}$/.test(offset)) return Number(offset);
  if (isOffsetToken(offset)) {
    const p = offsetPosition(offset);
    if (Number.isFinite(p)) return p;
  }
  throw new BadRequest("offset must be -1, a position, or an offset returned by this server");
}

/** The stream path named after an admin route's prefix (raw, as the protocol keys streams). */
function pathFrom(ctx: AppContext, url: URL, routePrefix: string): string {
  const name = url.pathname.slice(routePrefix.length);
  const max = ctx.config.MAX_PATH_BYTES;
  if (name.length === 0) throw new BadRequest("stream name is empty");
  if (STREAM_PREFIX.length + name.length > max) throw new BadRequest(`stream path is longer than ${max} bytes`);
  return STREAM_PREFIX + name;
}
