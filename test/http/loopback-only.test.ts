// A server without auth (issue 25.7), over raw sockets on Bun and Deno. Before: every answer,
// the admin API's included, carried `Access-Control-Allow-Origin: *`, and any Host was served,
// so a web page the operator visited (or DNS rebinding, which makes the page same-origin
// with the server under the attacker's name) could list and delete streams. After: the
// admin API never carries CORS headers and its preflights are not granted; requests naming a
// Host that is not a loopback name or address get 421 (health checks excepted); the stream
// routes keep `Access-Control-Allow-Origin: *`, which the protocol requires.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { request as rawBytes } from "../support/fuzz-cases.ts";
import { exchange, type RawResponse } from "../support/raw-http.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const HOOK_TIMEOUT_MS = 60_000;
const enc = new TextEncoder();

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`no auth on ${runtime}: loopback names only, no CORS on the admin API`, () => {
    let server: SpawnedServer;
    const ahead = spawnAhead({ runtime, quiet: true });
    beforeAll(async () => {
      server = await ahead();
      expect((await fetch(`${server.url}/v1/stream/kept`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
    }, HOOK_TIMEOUT_MS);
    afterAll(() => server?.stop(), HOOK_TIMEOUT_MS);

    async function raw(method: string, target: string, host: string, headers: [string, string][] = []): Promise<RawResponse> {
      const text = new TextDecoder().decode(rawBytes(method, target, headers)).replace("Host: 127.0.0.1", `Host: ${host}`);
      const ex = await exchange(server.port, [enc.encode(text)], { methods: [method], end: "wait", timeoutMs: 5_000 });
      expect(ex.responses.length).toBe(1);
      return ex.responses[0];
    }

    test("loopback names and addresses are served, with or without a port", async () => {
      const p = server.port;
      for (const host of [`127.0.0.1:${p}`, "127.0.0.1", `127.1.2.3:${p}`, `localhost:${p}`, "LOCALHOST", `[::1]:${p}`, "[::1]"]) {
        expect({ host, status: (await raw("GET", "/v1/admin/streams", host)).status }).toEqual({ host, status: 200 });
        expect({ host, status: (await raw("HEAD", "/v1/stream/kept", host)).status }).toEqual({ host, status: 200 });
      }
    });

    test("any other Host is refused (421) on the admin API and the streams, and nothing is deleted", async () => {
      for (const host of ["evil.example", `attacker.test:${server.port}`, "10.0.0.5", "127.0.0.1.evil.test", "[::2]:1", "localhost.evil"]) {
        const list = await raw("GET", "/v1/admin/streams", host);
        expect({ host, status: list.status }).toEqual({ host, status: 421 });
        expect(list.body.toString()).toContain("loopback");
        expect({ host, status: (await raw("DELETE", "/v1/stream/kept", host)).status }).toEqual({ host, status: 421 });
        expect({ host, status: (await raw("GET", "/v1/stream/kept?offset=-1", host)).status }).toEqual({ host, status: 421 });
        // Health checks name the instance (a container's or pod's address): still answered.
        expect({ host, status: (await raw("GET", "/healthz", host)).status }).toEqual({ host, status: 200 });
      }
      expect((await fetch(`${server.url}/v1/stream/kept`, { method: "HEAD" })).status).toBe(200);
    });

    test("the admin API carries no CORS headers and its preflights are not granted", async () => {
      const origin: [string, string] = ["Origin", "http://evil.example"];
      const host = `127.0.0.1:${server.port}`;
      for (const target of ["/v1/admin/streams", "/v1/admin/streams/kept", "/v1/admin/content/kept", "/v1/admin/subscriptions", "/v1/admin/nothing"]) {
        const res = await raw("GET", target, host, [origin]);
        expect({ target, acao: res.headers.get("access-control-allow-origin") ?? null }).toEqual({ target, acao: null });
      }
      for (const method of ["DELETE", "GET", "PUT"]) {
        const pre = await raw("OPTIONS", "/v1/admin/streams", host, [origin, ["Access-Control-Request-Method", method]]);
        expect(pre.status).toBeGreaterThanOrEqual(400);
        expect(pre.headers.get("access-control-allow-origin") ?? null).toBeNull();
        expect(pre.headers.get("access-control-allow-methods") ?? null).toBeNull();
      }
      const page = await raw("GET", "/ui/", host, [origin]);
      expect(page.status).toBe(200);
      expect(page.headers.get("access-control-allow-origin") ?? null).toBeNull();
    });

    test("the stream routes keep the protocol's CORS", async () => {
      const host = `127.0.0.1:${server.port}`;
      const origin: [string, string] = ["Origin", "http://app.example"];
      expect((await raw("GET", "/v1/stream/kept?offset=-1", host, [origin])).headers.get("access-control-allow-origin")).toBe("*");
      const pre = await raw("OPTIONS", "/v1/stream/kept", host, [origin, ["Access-Control-Request-Method", "DELETE"]]);
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("*");
      expect(pre.headers.get("access-control-allow-methods")).toContain("DELETE");
    });
  });
}
