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
import { type Outlet, pushStream } from "../runtime/direct-stream.ts";
import { respond } from "./respond.ts";
import { log } from "../observability/log.ts";
import type { Member } from "../live/sse-hub.ts";
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
  const body = pushStream(async (out) => {
    try {
      await pump(ctx, stream, from, clientCursor, text, out, stop);
    } catch (err) {
      // The stream vanished or the database failed mid-stream: end the response; the
      // client reconnects and gets a proper status.
      // (An outage is logged once by the store's availability gate, not per reader.)
      if (!(err instanceof ProtocolError) && !isConnectionError(err)) log.error({ err }, "sse read failed");
    } finally {
      bodyEnded(request);
      if (!cancelled.signal.aborted) {
        try {
          out.close();
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

/**
 * Catches up, then follows the stream's hub. Catching up pulls: the next range is read
 * only once the client has taken what it was sent (Outlet.room), so a client that stops
 * reading holds at most one event and BACKLOG_BYTES here (issue 25). A hub drops a member
 * that falls that far behind; it catches up the same way and joins again.
 */
async function pump(
  ctx: AppContext,
  initial: StreamRecord,
  from: number,
  clientCursor: string | null,
  text: boolean,
  out: Outlet,
  stop: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + ctx.config.SSE_MAX_LIFETIME_MS;
  const send = (b: Uint8Array) => stop.aborted || out.send(b);
  let stream = initial;
  let pos = from;
  // Cursors never go backwards for this client (10.1); within the connection they follow
  // the clock, so readers of one stream share identical control events.
  const cursorBase = Number(nextCursor(clientCursor));
  for (;;) {
    // Catch up on our own; once at the tail, the stream's hub delivers (live/sse-hub.ts).
    for (;;) {
      // A client that has not read for the whole lifetime is let go (it reconnects from its
      // last control event's offset), so it does not hold a live-read slot for ever.
      if (!(await roomBefore(out, deadline)) || stop.aborted) return;
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
    const behind = await new Promise<StreamRecord | undefined>((resolve) => {
      const end = (state?: StreamRecord) => {
        clearTimeout(timer);
        stop.removeEventListener("abort", onStop);
        leave();
        resolve(state);
      };
      const onStop = () => end();
      const timer = setTimeout(end, left);
      stop.addEventListener("abort", onStop);
      const member: Member = {
        // The hub moves the member's position as it delivers.
        get pos() {
          return pos;
        },
        set pos(p: number) {
          pos = p;
        },
        cursorBase,
        send,
        hasRoom: () => out.hasRoom(),
        finish: () => end(),
        fellBehind: (state: StreamRecord) => end(state),
      };
      const leave = ctx.sse.join(stream, member);
    });
    if (!behind) return;
    stream = behind;
  }
}

/** Waits until the client has room (true), or until `deadline` passes without it (false). */
async function roomBefore(out: Outlet, deadline: number): Promise<boolean> {
  if (out.hasRoom()) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([out.room().then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
