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
import { ON_BUN } from "./bun.ts";

/** Produces the body: `send` writes one chunk, `close` ends the body; resolves when done. */
export type Producer = (send: (b: Uint8Array) => void, close: () => void) => Promise<void>;

interface DirectSink {
  write(chunk: Uint8Array): unknown;
  flush(): unknown;
  close(): unknown;
}

export function pushStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  return ON_BUN ? directStream(run, onCancel) : queuedStream(run, onCancel);
}

function directStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  let open = true;
  const source = {
    type: "direct",
    pull(sink: DirectSink) {
      return run((b) => {
        if (!open) return;
        try {
          sink.write(b);
          sink.flush();
        } catch {
          // The connection went away before the runtime told us: stop writing to it.
          open = false;
          onCancel();
        }
      }, () => {
        open = false;
        sink.close();
      });
    },
    cancel() {
      open = false;
      onCancel();
    },
  };
  return new ReadableStream(source as unknown as UnderlyingDefaultSource<Uint8Array>);
}

function queuedStream(run: Producer, onCancel: () => void): ReadableStream<Uint8Array> {
  let open = true;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      return run((b) => {
        if (!open) return;
        try {
          controller.enqueue(b);
        } catch {
          open = false;
          onCancel();
        }
      }, () => {
        if (!open) return;
        open = false;
        controller.close();
      });
    },
    cancel() {
      open = false;
      onCancel();
    },
  });
}
