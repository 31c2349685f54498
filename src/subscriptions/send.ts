// One webhook POST to the address ssrf.ts checked (issue 25.6): node:http / node:https with
// a `lookup` that answers with that address, so the connection cannot go anywhere a second
// resolution would say, while the Host header and the TLS server name stay the URL's host
// (certificates are still verified against the name). Works the same on Bun and Deno
// (test/subscriptions/webhook-targets.test.ts). No redirects are followed: a redirect could
// lead anywhere the checks refuse.
//
// Connections are kept alive between webhooks (issue 30.3: a new connection cost about
// 0.7 ms of the append -> webhook path under load): one keep-alive agent per protocol, host,
// port AND checked address, so a kept connection is only ever reused for the address it was
// opened to, whatever the host resolves to later. Each agent holds at most
// WEBHOOK_HOST_CONCURRENCY sockets (the claims already keep that many sends open per host),
// and closes a socket idle for IDLE_MS, before common servers' keep-alive timeouts (5 s).
//
// Not on Deno (2.9): there, a request destroyed on a reused kept-alive connection (a send
// cut at its lease's end or WEBHOOK_TIMEOUT_MS) is sent again on a new connection by the
// runtime itself, and the request never reports the error: the receiver got the same
// wake twice, the second after its lease had ended (test/subscriptions/leases.test.ts
// caught it), and the send hung. On a connection of its own an abort ends the request as it
// should, so Deno opens one per send. And a send settles when its signal aborts, whatever
// the runtime reports.
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Target } from "./ssrf.ts";

export interface Answer {
  status: number;
  /** The body, cut at `maxBytes`. */
  text: string;
}

const IDLE_MS = 4_000;
/** See the head of this file: Deno re-sends a destroyed request on a kept connection. */
const KEEP_ALIVE = !("Deno" in globalThis);
/** Agents kept for this many distinct targets; the least recently used is let go beyond. */
const MAX_AGENTS = 256;

export class Connections {
  private readonly agents = new Map<string, http.Agent>();

  /** `perHost`: most sockets to one target (WEBHOOK_HOST_CONCURRENCY). */
  constructor(private readonly perHost: number) {}

  /** POSTs `body` to the checked address; a kept connection the peer closed meanwhile is retried once on a new one. */
  async post(target: Target, headers: Record<string, string>, body: string, signal: AbortSignal, maxBytes: number): Promise<Answer> {
    const agent = this.agentFor(target);
    try {
      return await postPinned(target, headers, body, signal, maxBytes, agent);
    } catch (err) {
      if (!(err instanceof StaleConnection) || signal.aborted) throw err instanceof StaleConnection ? err.cause : err;
      return postPinned(target, headers, body, signal, maxBytes, agent);
    }
  }

  private agentFor(target: Target): http.Agent {
    const { url } = target;
    const key = `${url.protocol}//${target.host}:${url.port}@${target.address}`;
    let agent = this.agents.get(key);
    if (agent) {
      // Most recently used last: the first entry is the one let go.
      this.agents.delete(key);
      this.agents.set(key, agent);
      return agent;
    }
    const Agent = url.protocol === "https:" ? https.Agent : http.Agent;
    agent = new Agent({ keepAlive: KEEP_ALIVE, maxSockets: this.perHost, maxFreeSockets: this.perHost, timeout: IDLE_MS, scheduling: "lifo" });
    this.agents.set(key, agent);
    if (this.agents.size > MAX_AGENTS) {
      const [oldest, old] = this.agents.entries().next().value!;
      this.agents.delete(oldest);
      // Sends still on it finish; its idle sockets close now, later ones after IDLE_MS.
      closeIdle(old);
    }
    return agent;
  }

  /** Closes every connection (shutdown, after the sends ended). */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function closeIdle(agent: http.Agent): void {
  const free = (agent as { freeSockets?: Record<string, { destroy(): void }[] | undefined> }).freeSockets ?? {};
  for (const list of Object.values(free)) for (const s of list ?? []) s.destroy();
}

/** A kept-alive connection failed before any answer (the peer closed it as it was reused). */
class StaleConnection extends Error {
  constructor(override readonly cause: unknown) {
    super("kept-alive connection closed by the peer");
  }
}

function postPinned(target: Target, headers: Record<string, string>, body: string, signal: AbortSignal, maxBytes: number, agent: http.Agent): Promise<Answer> {
  const pinned: LookupFunction = (_host, options, callback) => {
    const cb = callback as (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void;
    if ((options as { all?: boolean })?.all) cb(null, [{ address: target.address, family: target.family }]);
    else cb(null, target.address, target.family);
  };
  const { url } = target;
  const client = url.protocol === "https:" ? https : http;
  const payload = new TextEncoder().encode(body);
  return new Promise<Answer>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const req = client.request({
      method: "POST",
      host: target.host,
      port: url.port ? Number(url.port) : undefined,
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, "Content-Length": String(payload.byteLength) },
      lookup: pinned,
      ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
      agent,
    });
    const finish = (f: () => void) => {
      signal.removeEventListener("abort", onAbort);
      f();
    };
    const onAbort = () => {
      const reason = signal.reason instanceof Error ? signal.reason : new Error("aborted");
      req.destroy(reason);
      // Settled here too: a runtime that never emits the request's error cannot hang the send.
      finish(() => reject(reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    let answered = false;
    req.on("error", (err) => finish(() => reject(!answered && (req as { reusedSocket?: boolean }).reusedSocket ? new StaleConnection(err) : err)));
    req.on("response", (res) => {
      answered = true;
      const parts: Uint8Array[] = [];
      let size = 0;
      const done = () => {
        const all = new Uint8Array(Math.min(size, maxBytes));
        let at = 0;
        for (const p of parts) {
          const take = p.subarray(0, all.byteLength - at);
          all.set(take, at);
          at += take.byteLength;
        }
        finish(() => resolve({ status: res.statusCode ?? 0, text: new TextDecoder().decode(all) }));
      };
      res.on("data", (c: Uint8Array) => {
        size += c.byteLength;
        parts.push(c);
        // Enough to read the answer: the rest is not waited for.
        if (size >= maxBytes) {
          done();
          res.destroy();
        }
      });
      res.on("error", (err) => finish(() => reject(err)));
      res.on("end", done);
    });
    req.end(payload);
  });
}
