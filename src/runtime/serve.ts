// Listening, the runtime-specific part of serving: Bun.serve or Deno.serve. Everything else
// uses web-standard Request/Response.
import type { Config } from "../settings.ts";
import { withBodyIdleTimeout } from "./body-idle.ts";
import { ON_BUN } from "./bun.ts";

export interface ServerHandle {
  port: number;
  /** Stops accepting, waits up to graceMs for in-flight requests, then closes the rest. */
  stop(graceMs: number): Promise<void>;
}

/** What the runtime knows about a request's connection. */
export interface ConnInfo {
  /** The peer's IP address. */
  address?: string;
  /** Exempts this request's connection from the idle timeout (live reads sit quiet on purpose). */
  holdOpen?: () => void;
  /** Settles once the response body has been delivered or the client went away (Deno). */
  completed?: Promise<void>;
}

type Fetch = (request: Request, conn?: ConnInfo) => Response | Promise<Response>;

interface DenoInfo {
  remoteAddr: { hostname?: string };
  completed?: Promise<void>;
}

declare const Deno: {
  serve(
    opts: Record<string, unknown>,
    handler: (request: Request, info: DenoInfo) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void>; addr: { port: number } };
};

/** Bun's view of a request's connection; the peer address (a syscall) only when asked for. */
class BunConn implements ConnInfo {
  constructor(private readonly server: Bun.Server<unknown>, private readonly request: Request) {}
  get address(): string | undefined {
    return this.server.requestIP(this.request)?.address;
  }
  holdOpen(): void {
    this.server.timeout(this.request, 0);
  }
}

const withTimeout = (p: Promise<unknown>, ms: number) =>
  Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

type ServeConfig = Pick<Config, "PORT" | "HOST" | "MAX_BODY_BYTES" | "REQUEST_IDLE_TIMEOUT_S"> & {
  /** Share the port with other processes (SO_REUSEPORT, Linux): WORKERS > 1. */
  reusePort?: boolean;
};

export async function serve(fetch: Fetch, config: ServeConfig): Promise<ServerHandle> {
  if (ON_BUN) {
    const server = Bun.serve({
      port: config.PORT,
      hostname: config.HOST,
      reusePort: config.reusePort ?? false,
      fetch: (request, server) => fetch(request, new BunConn(server, request)),
      // A connection that sends or receives nothing for this long is closed: this cuts off clients
      // that send a body slowly or not at all, and idle keep-alives. Live reads, which sit quiet
      // on purpose, lift it for their own request (holdOpen). Request heads are bounded apart
      // from this: Bun closes a connection whose head is not complete within about 10 s.
      idleTimeout: config.REQUEST_IDLE_TIMEOUT_S,
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
    // Deno.serve has no header or idle timeouts to set (README, Security); a stalled body at
    // least gets its handler answered (body-idle.ts).
    const idleMs = config.REQUEST_IDLE_TIMEOUT_S * 1000;
    const server = Deno.serve(
      { port: config.PORT, hostname: config.HOST, reusePort: config.reusePort ?? false, onListen: () => ready() },
      (request, info) => {
        const completed = info.completed;
        // It rejects when the client leaves early: expected, not an unhandled error.
        completed?.catch(() => {});
        const req = idleMs > 0 && request.body ? withBodyIdleTimeout(request, idleMs) : request;
        return fetch(req, { address: info.remoteAddr.hostname, completed });
      },
    );
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
