// One request, one meaning (issue 25.4) and percent-encoding (issue 26.4), over raw sockets
// on Bun and Deno with auth on. Before: with `Host: a:1` (Bun and Deno) or `Host: ab` (Deno),
// `GET /X/v1/admin/content/a/x` by a token allowed only `__admin/content/a/**` answered the
// content of t/a/x: the router cut the path at request.url's 12th character, the guard
// checked that cut path, and the handler read the whole one.
// After: /X/... is no route (404) and nothing is stored. A path with a "%" not followed by
// two hex digits is a 400 for every method, and never becomes a stream.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type TokenFixture, writeTokenFile } from "../support/auth.ts";
import { request as rawBytes } from "../support/fuzz-cases.ts";
import { exchange, type RawResponse } from "../support/raw-http.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const HOOK_TIMEOUT_MS = 60_000;
// Short Hosts, with and without a port: each once made the router and the guard disagree.
const HOSTS = ["a:1", "x", "ab", "abc", "a:12", "[::1]:1"];

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`request target on ${runtime}`, () => {
    let server: SpawnedServer;
    let fx: TokenFixture;
    const enc = new TextEncoder();

    fx = writeTokenFile([
      { name: "root", allow: [{ paths: ["**"], ops: ["read", "append", "create", "delete", "admin"] }] },
      { name: "content-a", allow: [{ paths: ["__admin/content/a/**"], ops: ["admin"] }] },
    ]);
    const ahead = spawnAhead({ runtime, quiet: true, env: { AUTH_TOKENS_FILE: fx.file } });
    beforeAll(async () => {
      server = await ahead();
      const root = { Authorization: `Bearer ${fx.tokens.root}` };
      for (const name of ["t/a/x", "a/x"]) {
        expect((await fetch(`${server.url}/v1/stream/${name}`, { method: "PUT", headers: { ...root, "Content-Type": "text/plain" } })).status).toBe(201);
        await fetch(`${server.url}/v1/stream/${name}`, { method: "POST", headers: { ...root, "Content-Type": "text/plain" }, body: `secret of ${name}` });
      }
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      fx?.cleanup();
    }, HOOK_TIMEOUT_MS);

    async function raw(method: string, target: string, host: string, headers: [string, string][] = [], body?: string): Promise<RawResponse> {
      // rawBytes writes `Host: 127.0.0.1`; these requests name the Host under test instead.
      const text = new TextDecoder().decode(rawBytes(method, target, headers, body === undefined ? undefined : enc.encode(body)));
      const ex = await exchange(server.port, [enc.encode(text.replace("Host: 127.0.0.1", `Host: ${host}`))], { methods: [method], end: "wait", timeoutMs: 5_000 });
      expect(ex.responses.length).toBe(1);
      return ex.responses[0];
    }

    async function content(name: string): Promise<string> {
      const res = await fetch(`${server.url}/v1/stream/${name}?offset=-1`, { headers: { Authorization: `Bearer ${fx.tokens.root}` } });
      return res.text();
    }

    test("the token's own grant works, the straight path to another stream is refused", async () => {
      const mine = await raw("GET", "/v1/admin/content/a/x", "127.0.0.1", [["Authorization", `Bearer ${fx.tokens["content-a"]}`]]);
      expect(mine.status).toBe(200);
      const other = await raw("GET", "/v1/admin/content/t/a/x", "127.0.0.1", [["Authorization", `Bearer ${fx.tokens["content-a"]}`]]);
      expect(other.status).toBe(403);
    });

    test("a short Host never moves the path: /X/v1/... is no route, whoever asks", async () => {
      for (const host of HOSTS) {
        for (const target of ["/X/v1/admin/content/a/x", "/X/v1/admin/content/t/a/x"]) {
          // Before, the first was checked as __admin/content/a/x (allowed) and served t/a/x
          // (the handler cut the parsed path at the routed prefix's length): 200 with its data.
          const read = await raw("GET", target, host, [["Authorization", `Bearer ${fx.tokens["content-a"]}`]]);
          expect({ host, target, status: read.status }).toEqual({ host, target, status: 404 });
          expect(read.body.toString()).not.toContain("secret");
        }
        const append = await raw("POST", "/X/v1/stream/t/a/x", host, [["Content-Type", "text/plain"]], "injected");
        expect({ host, status: append.status }).toEqual({ host, status: 404 });
        const anon = await raw("GET", "/X/v1/stream/t/a/x?offset=-1", host);
        expect({ host, status: anon.status }).toEqual({ host, status: 404 });
      }
      expect(await content("t/a/x")).toBe("secret of t/a/x");
    });

    test("a Host that is not host[:port] is a 400 before any route", async () => {
      for (const host of ["a/b", "a?b", "a#b", "a@b", "a b"]) {
        const res = await raw("POST", "/v1/stream/t/a/x", host, [["Content-Type", "text/plain"]], "injected");
        expect({ host, status: res.status }).toEqual({ host, status: 400 });
      }
      expect(await content("t/a/x")).toBe("secret of t/a/x");
    });

    test("a lone % (or % without two hex digits) is a 400 for every method and creates nothing", async () => {
      const auth: [string, string] = ["Authorization", `Bearer ${fx.tokens.root}`];
      for (const path of ["/v1/stream/foo%", "/v1/stream/foo%4", "/v1/stream/fo%zzo", "/v1/stream/%/a"]) {
        for (const method of ["PUT", "POST", "GET", "HEAD", "DELETE", "OPTIONS", "PATCH"]) {
          const res = await raw(method, path, "127.0.0.1", [auth, ["Content-Type", "text/plain"]], method === "POST" ? "x" : undefined);
          expect({ path, method, status: res.status }).toEqual({ path, method, status: 400 });
          if (method === "GET") expect(res.body.toString()).toContain("%25");
        }
      }
      // The name the server would have made (a literal % is %25) does not exist.
      const head = await fetch(`${server.url}/v1/stream/foo%25`, { method: "HEAD", headers: { Authorization: `Bearer ${fx.tokens.root}` } });
      expect(head.status).toBe(404);
      const list = await fetch(`${server.url}/v1/admin/streams?prefix=foo`, { headers: { Authorization: `Bearer ${fx.tokens.root}` } });
      expect(((await list.json()) as { streams: unknown[] }).streams).toEqual([]);
    });
  });
}
