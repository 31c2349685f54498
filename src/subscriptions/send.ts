// One webhook POST to the address ssrf.ts checked (issue 25.6): node:http / node:https with
// a `lookup` that answers with that address, so the connection cannot go anywhere a second
// resolution would say, while the Host header and the TLS server name stay the URL's host
// (certificates are still verified against the name). Works the same on Bun and Deno
// (test/subscriptions/ssrf-delivery.test.ts). No redirects are followed: a redirect could
// lead anywhere the checks refuse.
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Target } from "./ssrf.ts";

export interface Answer {
  status: number;
  /** The body, cut at `maxBytes`. */
  text: string;
}

export function postPinned(target: Target, headers: Record<string, string>, body: string, signal: AbortSignal, maxBytes: number): Promise<Answer> {
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
      agent: false,
    });
    const onAbort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    const finish = (f: () => void) => {
      signal.removeEventListener("abort", onAbort);
      f();
    };
    req.on("error", (err) => finish(() => reject(err)));
    req.on("response", (res) => {
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
