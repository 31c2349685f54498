// GET: catch-up reads (PROTOCOL 5.6) and long-poll (5.7); SSE lives in sse.ts.
import { nextCursor } from "../protocol/cursor.ts";
import { BadRequest } from "../protocol/errors.ts";
import { jsonArrayParts } from "../protocol/json.ts";
import { formatOffset, parseOffset } from "../protocol/offsets.ts";
import { assertRetained, type ReadResult, type StreamRecord, visible } from "../store/index.ts";
import { type AppContext, streamPath } from "./context.ts";
import { respond } from "./respond.ts";
import { handleSse } from "./sse.ts";
import { maybeCompress } from "./compress.ts";
import { memo } from "../lib/memo.ts";
import type { Target } from "./target.ts";

// A Blob over the stored units: the runtime sends the parts without joining them in JS,
// and readers of the same range share it.
const bodies = new WeakMap<ReadResult, Blob>();
const CACHEABLE = "public, max-age=60, stale-while-revalidate=300";

export async function handleRead(ctx: AppContext, request: Request, t: Target): Promise<Response> {
  const params = t.params;
  const offsetParams = params.getAll("offset");
  const offsetParam = offsetParams[0] ?? null;
  const offset = parseOffset(offsetParam);
  if (!offset || offsetParam === "" || offsetParams.length > 1) throw new BadRequest("offset must be -1, now, or an offset returned by this server");
  const live = params.get("live");
  if (live !== null && live !== "long-poll" && live !== "sse") throw new BadRequest("live must be long-poll or sse");
  if (live !== null && offsetParam === null) throw new BadRequest("live reads require an offset");
  const path = streamPath(t, ctx.config.MAX_PATH_BYTES);
  // Live reads may use the notification-invalidated cache; catch-up reads always read the
  // table, so a write acknowledged by another instance is visible at once.
  let stream = visible(await (live ? ctx.reads.lookup(path) : ctx.store.find(path)));
  const position = offset.kind === "position" ? offset.position : 0;
  // A cached tail may lag a write whose notification is still on its way: ask the table.
  if (live && position > stream.tail) stream = visible(await ctx.reads.lookupFresh(path));
  // The cache hears of appends, not of retention passes: -1 asks the table where data begins.
  else if (live && offset.kind === "start" && stream.retained) stream = visible(await ctx.reads.lookupFresh(path));
  await ctx.store.touch(stream);
  // -1 starts at the earliest retained message; below it is 410 Gone, before SSE starts (5.6).
  const from = offset.kind === "now" ? stream.tail : offset.kind === "start" ? stream.earliest : position;
  if (from > stream.tail) throw new BadRequest("offset is beyond the end of the stream");
  assertRetained(stream, from);
  const cursor = params.get("cursor");
  return withEarliestOffset(stream, await serveRead(ctx, request, stream, from, cursor, live, offset.kind === "now"));
}

function serveRead(ctx: AppContext, request: Request, stream: StreamRecord, from: number, cursor: string | null, live: string | null, now: boolean) {
  if (live === "sse") return handleSse(ctx, request, stream, from, cursor);
  if (live === "long-poll") return longPoll(ctx, request, stream, from, cursor);
  if (now) {
    // offset=now: no data, just the tail, and never cached (8).
    return respond(200, nowHeaders(stream), stream.isJson ? "[]" : null);
  }
  return catchUp(ctx, request, stream, from, undefined);
}

/** Stream-Earliest-Offset on reads of a stream under a policy (notes/retention.md). */
function withEarliestOffset(stream: StreamRecord, response: Response): Response {
  if (stream.retained) response.headers.set("Stream-Earliest-Offset", formatOffset(stream.earliest));
  return response;
}

function nowHeaders(stream: StreamRecord): Record<string, string> {
  const h: Record<string, string> = {
    "Content-Type": stream.contentType,
    "Stream-Next-Offset": formatOffset(stream.tail),
    "Stream-Up-To-Date": "true",
    "Cache-Control": "no-store",
  };
  if (stream.closed) h["Stream-Closed"] = "true";
  return h;
}

/** Serves data from `from`; with a cursor it is a long-poll answer. */
async function catchUp(
  ctx: AppContext,
  request: Request,
  stream: StreamRecord,
  from: number,
  cursor: string | undefined,
): Promise<Response> {
  const result = await ctx.reads.read(stream, from, ctx.config.READ_CHUNK_BYTES);
  const { next } = result;
  const atTail = next >= stream.tail;
  const closedNow = stream.closed && atTail;
  // The ETag names the exact range and changes when the stream closes (10.1).
  const etag = `"${stream.id}:${formatOffset(from)}:${formatOffset(next)}${closedNow ? ":c" : ""}"`;
  const headers: Record<string, string> = {
    "Content-Type": stream.contentType,
    "Stream-Next-Offset": formatOffset(next),
    ETag: etag,
    "Cache-Control": CACHEABLE,
  };
  if (atTail) headers["Stream-Up-To-Date"] = "true";
  if (closedNow) headers["Stream-Closed"] = "true";
  if (cursor !== undefined && !closedNow) headers["Stream-Cursor"] = cursor;
  if (matchesEtag(request.headers.get("if-none-match"), etag)) return respond(304, headers);
  const body = memo(bodies, result, () => new Blob((stream.isJson ? jsonArrayParts(result.units) : result.units) as BlobPart[]));
  return maybeCompress(request, respond(200, headers, body), body.size);
}

function matchesEtag(header: string | null, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const v = t.trim();
    return v === etag || v === "*" || v.replace(/^W\//, "") === etag;
  });
}

async function longPoll(
  ctx: AppContext,
  request: Request,
  stream: StreamRecord,
  from: number,
  clientCursor: string | null,
): Promise<Response> {
  const deadline = Date.now() + ctx.config.LONG_POLL_TIMEOUT_MS;
  // Shutdown answers a waiting long-poll at once (the client retries elsewhere); a client
  // that went away stops waiting too. Before a response exists, request.signal is the only
  // word of that on every runtime (Bun and Deno abort it when the connection closes; Deno's
  // legacy abort after a successful response comes after this wait and is turned off in
  // deno.json).
  const stop = AbortSignal.any([ctx.shutdown, request.signal]);
  let current = stream;
  for (;;) {
    if (from < current.tail) return catchUp(ctx, request, current, from, nextCursor(clientCursor));
    if (current.closed) return timeoutResponse(current, undefined);
    const remaining = deadline - Date.now();
    if (remaining <= 0 || stop.aborted) {
      return timeoutResponse(current, nextCursor(clientCursor));
    }
    // Register first, then re-check the tail, so an append between the two still wakes us.
    const waiter = ctx.notifier.subscribe(current.id, { tail: current.tail, closed: current.closed });
    try {
      // Same tick as subscribe: when the cache holds the stream, no query is needed.
      const fresh = visible(await ctx.reads.current(current, waiter.since));
      if (fresh.tail > from || fresh.closed) {
        current = fresh;
        continue;
      }
      await waiter.wait(remaining, stop);
      if (stop.aborted) return timeoutResponse(current, nextCursor(clientCursor));
      current = visible(await ctx.reads.current(current, waiter.since));
    } finally {
      waiter.cancel();
    }
  }
}

function timeoutResponse(stream: StreamRecord, cursor: string | undefined): Response {
  const h: Record<string, string> = {
    "Stream-Next-Offset": formatOffset(stream.tail),
    "Stream-Up-To-Date": "true",
    "Cache-Control": "no-store",
  };
  if (stream.closed) h["Stream-Closed"] = "true";
  else if (cursor) h["Stream-Cursor"] = cursor;
  return respond(204, h);
}

