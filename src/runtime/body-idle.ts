// Deno only: Deno.serve has no idle timeout, so a client that stops sending its body would
// hold its handler (and an append slot) for ever. The body is passed through a stream that
// fails when no bytes arrive for `idleMs`; the handler then answers 408. Bun closes such
// connections itself (idleTimeout in serve.ts).
import { RequestTimeout } from "../protocol/errors.ts";

export function withBodyIdleTimeout(request: Request, idleMs: number): Request {
  const source = request.body!.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      timer = setTimeout(() => {
        controller.error(new RequestTimeout(`request body stalled for ${idleMs} ms`));
        source.cancel().catch(() => {});
      }, idleMs);
      try {
        const { done, value } = await source.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        try {
          controller.error(err);
        } catch {
          // already errored by the timer
        }
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return source.cancel(reason);
    },
  });
  return new Request(request, { body, duplex: "half" } as RequestInit);
}
