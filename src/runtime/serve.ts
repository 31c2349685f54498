// The only runtime-specific code: listen with Bun.serve or Deno.serve. Everything else
// uses web-standard Request/Response.
import type { Config } from "../config.ts";

export interface ServerHandle {
  port: number;
  /** Stops accepting, waits up to graceMs for in-flight requests, then closes the rest. */
  stop(graceMs: number): Promise<void>;
}

type Fetch = (request: Request) => Response | Promise<Response>;

declare const Deno: {
  serve(opts: Record<string, unknown>, handler: Fetch): { finished: Promise<void>; shutdown(): Promise<void>; addr: { port: number } };
};

const withTimeout = (p: Promise<unknown>, ms: number) =>
  Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

export async function serve(fetch: Fetch, config: Pick<Config, "PORT" | "HOST" | "MAX_BODY_BYTES">): Promise<ServerHandle> {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
    const server = Bun.serve({
      port: config.PORT,
      hostname: config.HOST,
      fetch,
      // Live reads hold connections open far longer than Bun's 10 s default idle timeout.
      idleTimeout: 0,
      maxRequestBodySize: config.MAX_BODY_BYTES + 1024 * 1024,
    });
    return {
      port: server.port as number,
      async stop(graceMs) {
        await withTimeout(server.stop(false), graceMs);
        await server.stop(true);
      },
    };
  }
  if (typeof Deno !== "undefined") {
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    const server = Deno.serve({ port: config.PORT, hostname: config.HOST, onListen: () => ready() }, fetch);
    await listening;
    return {
      port: server.addr.port,
      async stop(graceMs) {
        await withTimeout(server.shutdown(), graceMs);
      },
    };
  }
  throw new Error("unsupported runtime: run with Bun or Deno");
}
