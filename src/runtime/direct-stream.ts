// A response body that the server pushes to (SSE). On Bun a "direct" stream: each event is
// written and flushed to the socket in the same tick as the wake-up that produced it. A
// queued ReadableStream (Deno, and anything else) hands chunks over to the socket only on
// a later turn of the event loop, behind whatever requests arrived meanwhile (with a
// thousand long-polls coming back after an append, tens of milliseconds).
//
// Either way the body tells the producer when the client has gone: `onCancel` runs when
// the runtime cancels the body (the connection closed) or a write to it fails, so ending a
// live read never depends on request.signal (which Deno also aborts once a response
// completes successfully).
//
// Backpressure (issue 25): the body counts the bytes written to it that the socket has not
// taken yet (its backlog). A producer asks hasRoom() before writing more and awaits room()
// when there is none, so a client that stops reading costs the server at most
// BACKLOG_BYTES plus the one write that crossed it, whatever the stream's size. Without
// this, six non-reading SSE clients of a 32 MiB stream held the whole stream each
// (Bun: +330 MB of RSS, Deno: +260 MB).
import { ON_BUN } from "./bun.ts";

/** Bytes a body may hold for its client before the producer must wait for it to read. */
export const BACKLOG_BYTES = 1024 * 1024;

/** The producer's side of a pushed body. */
export interface Outlet {
  /** Writes one chunk now (never waits); call hasRoom() first to respect backpressure. */
  send(b: Uint8Array): void;
  /** False while the client has not taken BACKLOG_BYTES or more of what was sent. */
  hasRoom(): boolean;
  /** Resolves once hasRoom() is true again, or the body was cancelled. */
  room(): Promise<void>;
  /** Ends the body. */
  close(): void;
}

/** Produces the body; resolves when done. */
export type Producer = (out: Outlet) => Promise<void>;

interface DirectSink {
  write(chunk: Uint8Array): number | Promise<number>;
  flush(): unknown;
  close(): unknown;
}

export function pushStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  return ON_BUN ? directStream(run, onCancel) : queuedStream(run, onCancel);
}

/** Waiters for room, woken together. */
class RoomWaiters {
  private waiting: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((r) => this.waiting.push(r));
  }
  wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }
}

function directStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  let open = true;
  // Bun's sink.write answers a number when the socket took the bytes, and a promise while
  // they wait in Bun's buffer; the promise settles once they are written.
  let backlog = 0;
  const waiters = new RoomWaiters();
  const cancel = () => {
    if (!open) return;
    open = false;
    waiters.wake();
    onCancel();
  };
  const source = {
    type: "direct",
    pull(sink: DirectSink) {
      const out: Outlet = {
        send(b) {
          if (!open) return;
          try {
            const written = sink.write(b);
            sink.flush();
            if (typeof written === "number") return;
            const n = b.byteLength;
            backlog += n;
            written.then(() => {
              backlog -= n;
              if (backlog < BACKLOG_BYTES) waiters.wake();
            }, cancel);
          } catch {
            // The connection went away before the runtime told us: stop writing to it.
            cancel();
          }
        },
        hasRoom: () => !open || backlog < BACKLOG_BYTES,
        room: () => (!open || backlog < BACKLOG_BYTES ? Promise.resolve() : waiters.wait()),
        close() {
          if (!open) return;
          open = false;
          waiters.wake();
          sink.close();
        },
      };
      return run(out);
    },
    cancel,
  };
  return new ReadableStream(source as unknown as UnderlyingDefaultSource<Uint8Array>);
}

function queuedStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  let open = true;
  const waiters = new RoomWaiters();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  // The queue's desired size is BACKLOG_BYTES minus the bytes queued: the runtime takes a
  // chunk only when the socket can take it, and pull() runs once the queue has room again.
  const hasRoom = () => !open || (controller.desiredSize ?? 0) > 0;
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        const out: Outlet = {
          send(b) {
            if (!open) return;
            try {
              controller.enqueue(b);
            } catch {
              open = false;
              waiters.wake();
              onCancel();
            }
          },
          hasRoom,
          room: () => (hasRoom() ? Promise.resolve() : waiters.wait()),
          close() {
            if (!open) return;
            open = false;
            waiters.wake();
            controller.close();
          },
        };
        // Not awaited, so that pull() runs (start() must settle first); the producer handles
        // its own errors.
        run(out).catch(() => out.close());
      },
      pull() {
        waiters.wake();
      },
      cancel() {
        open = false;
        waiters.wake();
        onCancel();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BACKLOG_BYTES }),
  );
}
