// Server-Sent Events reads (PROTOCOL 5.8): data events followed by control events,
// base64 for binary streams, closed after the final control event of a closed stream
// or after the configured lifetime so clients reconnect (10.2). A reader catches up on
// its own, then its stream's hub (live/sse-hub.ts) delivers every later change.
import { ProtocolError } from "../protocol/errors.ts";
import { isConnectionError } from "../store/index.ts";
import { isTextForSse } from "../protocol/content-type.ts";
import { currentInterval, nextCursor } from "../protocol/cursor.ts";
import type { StreamRecord } from "../store/index.ts";
import type { AppContext } from "./context.ts";
import { controlJson, eventBytes } from "../protocol/sse.ts";
import { pushStream } from "../runtime/direct-stream.ts";
import { respond } from "./respond.ts";
import { log } from "../observability/log.ts";
import { bodyEnded } from "./body-end.ts";

export function handleSse(
  ctx: AppContext,
  request: Request,
  stream: StreamRecord,
  from: number,
  clientCursor: string | null,
): Response {
  const text = isTextForSse(stream.contentType);
  // The pump stops on shutdown (the client reconnects elsewhere) or when the runtime cancels
  // the body because the client went away (runtime/direct-stream.ts); never on
  // request.signal, which Deno's legacy mode also aborts after a successful response.
  const cancelled = new AbortController();
  const stop = AbortSignal.any([ctx.shutdown, cancelled.signal]);
  const body = pushStream(async (send, close) => {
    try {
      await pump(ctx, stream, from, clientCursor, text, (b) => stop.aborted || send(b), stop);
    } catch (err) {
      // The stream vanished or the database failed mid-stream: end the response; the
      // client reconnects and gets a proper status.
      // (An outage is logged once by the store's availability gate, not per reader.)
      if (!(err instanceof ProtocolError) && !isConnectionError(err)) log.error({ err }, "sse read failed");
    } finally {
      bodyEnded(request);
      if (!cancelled.signal.aborted) {
        try {
          close();
        } catch {
          // already closed by the runtime
        }
      }
    }
  }, () => cancelled.abort());
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
  const stream = initial;
  let pos = from;
  // Cursors never go backwards for this client (10.1); within the connection they follow
  // the clock, so readers of one stream share identical control events.
  const cursorBase = Number(nextCursor(clientCursor));
  // Catch up on our own; once at the tail, the stream's hub delivers (live/sse-hub.ts).
  for (;;) {
    if (stop.aborted) return;
    const result = pos < stream.tail ? await ctx.reads.read(stream, pos, ctx.config.READ_CHUNK_BYTES) : undefined;
    if (result) pos = result.next;
    const upToDate = pos >= stream.tail;
    const closed = stream.closed && upToDate;
    const cursor = Math.max(cursorBase, currentInterval(Date.now()));
    // A data event and its control event go out in one write.
    send(eventBytes(result, controlJson(pos, upToDate, closed, cursor), stream, text));
    if (closed) return;
    if (upToDate) break;
  }
  const left = deadline - Date.now();
  if (left <= 0 || stop.aborted) return;
  await new Promise<void>((resolve) => {
    const end = () => {
      clearTimeout(timer);
      stop.removeEventListener("abort", end);
      leave();
      resolve();
    };
    const timer = setTimeout(end, left);
    stop.addEventListener("abort", end);
    const leave = ctx.sse.join(stream, { pos, cursorBase, send, finish: end });
  });
}
