// Server-Sent Events reads (PROTOCOL 5.8): data events followed by control events,
// base64 for binary streams, closed after the final control event of a closed stream
// or after the configured lifetime so clients reconnect (10.2).
import { Buffer } from "node:buffer";
import { ProtocolError } from "../protocol/errors.ts";
import { isTextForSse } from "../protocol/content-type.ts";
import { currentInterval, nextCursor } from "../protocol/cursor.ts";
import { concatBytes, jsonArrayParts } from "../protocol/json.ts";
import { formatOffset } from "../protocol/offsets.ts";
import type { StreamRecord } from "../store/records.ts";
import type { AppContext } from "./context.ts";
import { memo } from "../live/shared-reads.ts";
import type { ReadResult } from "../store/chunks.ts";
import { respond } from "./respond.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEEPALIVE_MS = 15_000;
const KEEPALIVE = encoder.encode(": keep-alive\n\n");
// Encoded events per shared read result and control event (all readers of one range send
// the same bytes).
const encoded = new WeakMap<ReadResult, Map<string, Uint8Array>>();

function eventBytes(result: ReadResult | undefined, control: string, stream: StreamRecord, text: boolean): Uint8Array {
  const controlEvent = sseEvent("control", control);
  if (!result || result.units.length === 0) return encoder.encode(controlEvent);
  const byControl = memo(encoded, result, () => new Map<string, Uint8Array>());
  let bytes = byControl.get(control);
  if (!bytes) {
    const data = concatBytes(stream.isJson ? jsonArrayParts(result.units) : result.units);
    bytes = encoder.encode(sseEvent("data", text ? decoder.decode(data) : toBase64(data)) + controlEvent);
    byControl.set(control, bytes);
  }
  return bytes;
}

/**
 * Formats one SSE event. Every payload line (split on CR, LF and CRLF) gets its own
 * data: field, so stream content can never forge an event boundary.
 */
export function sseEvent(event: string, payload: string): string {
  const lines = payload.split(/\r\n|\r|\n/);
  return `event: ${event}\n${lines.map((l) => `data:${l}`).join("\n")}\n\n`;
}

export function handleSse(
  ctx: AppContext,
  request: Request,
  stream: StreamRecord,
  from: number,
  clientCursor: string | null,
): Response {
  const text = isTextForSse(stream.contentType);
  // The pump stops on shutdown (the client reconnects elsewhere), on client disconnect,
  // or when the consumer cancels the body.
  const cancelled = new AbortController();
  const stop = AbortSignal.any([ctx.shutdown, request.signal, cancelled.signal]);
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (b: Uint8Array) => {
        if (!stop.aborted) controller.enqueue(b);
      };
      try {
        await pump(ctx, stream, from, clientCursor, text, send, stop);
      } catch (err) {
        // The stream vanished or the database failed mid-stream: end the response; the
        // client reconnects and gets a proper status.
        if (!(err instanceof ProtocolError)) console.error("sse read failed", err);
      } finally {
        if (!cancelled.signal.aborted) {
          try {
            controller.close();
          } catch {
            // already closed by the runtime
          }
        }
      }
    },
    cancel() {
      cancelled.abort();
    },
  });
  const headers: Record<string, string> = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
  };
  if (!text) headers["Stream-SSE-Data-Encoding"] = "base64";
  return respond(200, headers, body);
}

async function pump(
  ctx: AppContext,
  initial: StreamRecord,
  from: number,
  clientCursor: string | null,
  text: boolean,
  send: (b: Uint8Array) => void,
  stop: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + ctx.config.SSE_MAX_LIFETIME_MS;
  let stream = initial;
  let pos = from;
  // Cursors never go backwards for this client (10.1); within the connection they follow
  // the clock, so readers of one stream share identical control events.
  const cursorBase = Number(nextCursor(clientCursor));
  let announced = -1;
  while (!stop.aborted) {
    let result: ReadResult | undefined;
    if (pos < stream.tail) {
      result = await ctx.reads.read(stream, pos, ctx.config.READ_CHUNK_BYTES);
      pos = result.next;
    }
    const upToDate = pos >= stream.tail;
    const closed = stream.closed && upToDate;
    if (pos !== announced || closed) {
      const control: Record<string, unknown> = { streamNextOffset: formatOffset(pos) };
      if (!closed) control.streamCursor = String(Math.max(cursorBase, currentInterval(Date.now())));
      if (upToDate) control.upToDate = true;
      if (closed) control.streamClosed = true;
      // A data event and its control event go out in one write; readers of the same range
      // with the same control share the encoded bytes.
      send(eventBytes(result, JSON.stringify(control), stream, text));
      announced = pos;
    }
    if (closed) return;
    if (!upToDate) continue;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return;
    // Register, then re-check, then wait: no append can slip between check and wait.
    const waiter = ctx.notifier.subscribe(stream.id, { tail: stream.tail, closed: stream.closed });
    try {
      // Same tick as subscribe: if the cache vouches for `stream`, skip the re-check query.
      const fresh = ctx.reads.unchanged(stream) ? stream : await ctx.reads.fresh(stream.id, waiter.since);
      if (!fresh || fresh.expired || fresh.deleted) return;
      if (fresh.tail === stream.tail && fresh.closed === stream.closed) {
        // Idle: keep the connection warm without touching the database; a change that a
        // lost notification would hide is still caught by the notifier's backstop.
        for (;;) {
          const left = deadline - Date.now();
          if (left <= 0) return;
          const woke = await waiter.wait(Math.min(left, KEEPALIVE_MS), stop);
          if (stop.aborted) return;
          if (woke) break;
          send(KEEPALIVE);
        }
        const again = await ctx.reads.fresh(stream.id, waiter.since);
        if (!again || again.expired || again.deleted) return;
        stream = again;
      } else {
        stream = fresh;
      }
    } finally {
      waiter.cancel();
    }
  }
}

function toBase64(bytes: Uint8Array): string {
  // Buffer exists on Bun and (through node compat) on Deno; it is far faster than btoa loops.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
