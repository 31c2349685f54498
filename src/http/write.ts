// PUT (create / fork), POST (append / close), DELETE and HEAD.
import { DEFAULT_CONTENT_TYPE, isJsonType } from "../protocol/content-type.ts";
import { BadRequest } from "../protocol/errors.ts";
import { isClosedHeader, parseExpectedOffset, parseExpiry, parseProducer, parseSafeInteger } from "../protocol/headers.ts";
import { splitJsonMessages } from "../protocol/json.ts";
import { formatOffset, isOffsetToken, offsetPosition } from "../protocol/offsets.ts";
import { type StreamRecord, visible } from "../store/index.ts";
import { parseRetentionHeaders } from "../protocol/retention.ts";
import { readBody } from "./body.ts";
import { type AppContext, streamPath } from "./context.ts";
import { respond } from "./respond.ts";
import type { Target } from "./target.ts";

export function metadataHeaders(s: StreamRecord): Record<string, string> {
  const h: Record<string, string> = { "Content-Type": s.contentType, "Stream-Next-Offset": formatOffset(s.tail) };
  if (s.ttlSeconds !== null) h["Stream-TTL"] = String(s.ttlSeconds);
  if (s.expiresAt !== null) h["Stream-Expires-At"] = s.expiresAt.toISOString();
  if (s.closed) h["Stream-Closed"] = "true";
  return withRetentionHeaders(h, s);
}

/**
 * Stream-Earliest-Offset on every answer about a stream under a retention or compaction
 * policy, or from which data was ever removed (notes/retention.md); the creator's policy
 * is echoed like Stream-TTL.
 */
export function withRetentionHeaders(h: Record<string, string>, s: StreamRecord): Record<string, string> {
  if (s.retained) h["Stream-Earliest-Offset"] = formatOffset(s.earliest);
  if (s.retention.maxAgeSeconds !== null) h["Stream-Retention-Max-Age"] = String(s.retention.maxAgeSeconds);
  if (s.retention.maxBytes !== null) h["Stream-Retention-Max-Bytes"] = String(s.retention.maxBytes);
  if (s.retention.compaction !== null) h["Stream-Compaction"] = s.retention.compaction;
  return h;
}

export async function handleCreate(ctx: AppContext, request: Request, t: Target): Promise<Response> {
  const h = request.headers;
  const expiry = parseExpiry(h.get("stream-ttl"), h.get("stream-expires-at"));
  const forkedFrom = h.get("stream-forked-from");
  const forkOffset = h.get("stream-fork-offset");
  const forkSub = h.get("stream-fork-sub-offset");
  if (forkedFrom === null && (forkOffset !== null || forkSub !== null)) {
    throw new BadRequest("Stream-Fork-Offset and Stream-Fork-Sub-Offset require Stream-Forked-From");
  }
  let fork;
  if (forkedFrom !== null) {
    if (forkOffset !== null && !isOffsetToken(forkOffset.trim())) throw new BadRequest("Stream-Fork-Offset is malformed");
    fork = {
      sourcePath: forkedFrom.trim(),
      offset: forkOffset === null ? null : offsetPosition(forkOffset.trim()),
      subOffset: forkSub === null ? 0 : parseSafeInteger("Stream-Fork-Sub-Offset", forkSub.trim()),
    };
  }
  const givenType = h.get("content-type");
  const contentType = givenType?.trim() || DEFAULT_CONTENT_TYPE;
  const body = await readBody(request, ctx.config.MAX_BODY_BYTES);
  const isJson = isJsonType(contentType);
  const messages =
    isJson && body.byteLength > 0 ? splitJsonMessages(body, { allowEmptyArray: true, maxMessages: ctx.config.MAX_MESSAGES_PER_APPEND }) : null;
  const path = streamPath(t, ctx.config.MAX_PATH_BYTES);
  const { created, stream } = await ctx.store.create({
    path,
    contentType,
    contentTypeGiven: Boolean(givenType?.trim()),
    isJson,
    ...expiry,
    closed: isClosedHeader(h.get("stream-closed")),
    retention: parseRetentionHeaders(h),
    // The split reused the body's buffer: from here on the messages stand for it.
    body: messages?.data ?? body,
    messages,
    fork,
    maxMessages: ctx.config.MAX_MESSAGES_PER_APPEND,
  });
  if (created) {
    // Glob subscriptions link a new stream before its creation is answered (PROTOCOL 6.2).
    const from = stream.forkOffset ?? 0;
    await ctx.subscriptions.trigger.created(path, from, stream.tail > from);
  }
  const headers = metadataHeaders(stream);
  if (created) headers["Location"] = `${t.origin}${t.path}`;
  return respond(created ? 201 : 200, headers);
}

export async function handleAppend(ctx: AppContext, request: Request, t: Target): Promise<Response> {
  const h = request.headers;
  const close = isClosedHeader(h.get("stream-closed"));
  const producer = parseProducer(h.get("producer-id"), h.get("producer-epoch"), h.get("producer-seq"));
  const expectedOffset = parseExpectedOffset(h.get("stream-expected-offset"));
  const body = await readBody(request, ctx.config.MAX_BODY_BYTES);
  if (body.byteLength === 0 && !close) throw new BadRequest("empty body: only a close (Stream-Closed: true) may omit data");
  const contentType = h.get("content-type");
  const messages = body.byteLength > 0 && contentType !== null && isJsonType(contentType)
    ? splitJsonMessages(body, { allowEmptyArray: false, maxMessages: ctx.config.MAX_MESSAGES_PER_APPEND })
    : null;
  const path = streamPath(t, ctx.config.MAX_PATH_BYTES);
  const out = await ctx.store.append({
    path,
    contentType,
    // The split reused the body's buffer: from here on the messages stand for it.
    body: messages?.data ?? body,
    messages,
    close,
    streamSeq: h.get("stream-seq"),
    producer,
    expectedOffset,
    signal: request.signal,
  });
  // Subscriptions following this stream are woken off the response path.
  ctx.subscriptions.trigger.appended(path);
  const headers: Record<string, string> = { "Stream-Next-Offset": formatOffset(out.tail) };
  if (out.closed) headers["Stream-Closed"] = "true";
  if (out.producer) {
    headers["Producer-Epoch"] = String(out.producer.epoch);
    headers["Producer-Seq"] = String(out.producer.seq);
  }
  return respond(out.status, headers);
}

export async function handleDelete(ctx: AppContext, t: Target): Promise<Response> {
  await ctx.store.delete(streamPath(t, ctx.config.MAX_PATH_BYTES));
  return respond(204);
}

export async function handleHead(ctx: AppContext, t: Target): Promise<Response> {
  // HEAD does not reset a TTL window (5.1).
  const stream = visible(await ctx.store.find(streamPath(t, ctx.config.MAX_PATH_BYTES)));
  return respond(200, { ...metadataHeaders(stream), "Cache-Control": "no-store" });
}
