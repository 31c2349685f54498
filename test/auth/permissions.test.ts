// Authentication and per-path authorization through real HTTP, on Bun and on Deno: every
// operation against allowed / other path / other op / no token / bad token / expired JWT /
// wrong audience, plus forks, the reserved subscription and admin routes, and SIGHUP reload.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { JWT_SECRET, signJwt, type TokenFixture, writeTokenFile } from "../support/auth.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const ALL = ["read", "append", "create", "delete"];
const AUDIENCE = "streams-test";
const ISSUER = "https://idp.test";
/** Start-up of a spawned server on a busy machine can take longer than bun's 5 s default. */
const HOOK_TIMEOUT_MS = 60_000;

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`permissions on ${runtime}`, () => {
    let server: SpawnedServer;
    let fx: TokenFixture;
    let base: string;
    const jwt: Record<string, string> = {};

    fx = writeTokenFile([
      { name: "writer", allow: [{ paths: ["orders/**"], ops: ALL }, { paths: ["shared/*"], ops: ["read"] }] },
      // Every op but one, on the same paths: "other op" for each op.
      ...ALL.map((op) => ({ name: `no-${op}`, allow: [{ paths: ["orders/**"], ops: ALL.filter((o) => o !== op) }] })),
      { name: "admin", allow: [{ paths: ["**"], ops: ["admin"] }] },
    ]);
    const ahead = spawnAhead({
      runtime,
      quiet: true,
      env: {
        AUTH_TOKENS_FILE: fx.file,
        AUTH_JWT_SECRET: JWT_SECRET,
        AUTH_JWT_AUDIENCE: AUDIENCE,
        AUTH_JWT_ISSUER: ISSUER,
        LONG_POLL_TIMEOUT_MS: "300",
        SSE_MAX_LIFETIME_MS: "300",
      },
    });
    beforeAll(async () => {
      server = await ahead();
      base = `${server.url}/v1/stream`;
      const claims = { sub: "alice", ds_allow: [{ paths: ["orders/**"], ops: ALL }] };
      jwt.valid = await signJwt(claims, { audience: AUDIENCE, issuer: ISSUER });
      jwt.expired = await signJwt(claims, { audience: AUDIENCE, issuer: ISSUER, expiresIn: Math.floor(Date.now() / 1000) - 3600 });
      jwt.wrongAudience = await signJwt(claims, { audience: "someone-else", issuer: ISSUER });
      // exp=1e300 was accepted (issue 25): beyond AUTH_JWT_MAX_LIFETIME_S.
      jwt.forever = await signJwt(claims, { audience: AUDIENCE, issuer: ISSUER, expiresIn: 1e300 });
      jwt.wrongKey = await signJwt(claims, { audience: AUDIENCE, issuer: ISSUER, secret: "a-different-secret-of-enough-length!!" });
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      fx?.cleanup();
    }, HOOK_TIMEOUT_MS);

    const bearer = (token?: string): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});
    let n = 0;
    /** A fresh stream under orders/ (created with the writer token) for each request that needs one. */
    async function fresh(prefix = "orders"): Promise<string> {
      const path = `${prefix}/s${n++}-${Date.now().toString(36)}`;
      const res = await fetch(`${base}/${path}`, {
        method: "PUT",
        headers: { ...bearer(fx.tokens.writer), "Content-Type": "text/plain" },
        body: "hello",
      });
      if (res.status !== 201) throw new Error(`setup create ${path}: ${res.status}`);
      return path;
    }

    type OpCase = { op: string; ok: number; run: (path: string, headers: Record<string, string>) => Promise<Response> };
    const ops: OpCase[] = [
      { op: "create", ok: 201, run: (p, h) => fetch(`${base}/${p}-new`, { method: "PUT", headers: { ...h, "Content-Type": "text/plain" } }) },
      { op: "append", ok: 204, run: (p, h) => fetch(`${base}/${p}`, { method: "POST", headers: { ...h, "Content-Type": "text/plain" }, body: "x" }) },
      { op: "append", ok: 204, run: (p, h) => fetch(`${base}/${p}`, { method: "POST", headers: { ...h, "Stream-Closed": "true" } }) },
      { op: "read", ok: 200, run: (p, h) => fetch(`${base}/${p}?offset=-1`, { headers: h }) },
      { op: "read", ok: 200, run: (p, h) => fetch(`${base}/${p}`, { method: "HEAD", headers: h }) },
      { op: "read", ok: 204, run: (p, h) => fetch(`${base}/${p}?offset=now&live=long-poll`, { headers: h }) },
      { op: "read", ok: 200, run: (p, h) => sse(`${base}/${p}?offset=-1&live=sse`, h) },
      { op: "delete", ok: 204, run: (p, h) => fetch(`${base}/${p}`, { method: "DELETE", headers: h }) },
    ];
    const names = ["create", "append", "close", "read", "head", "long-poll", "sse", "delete"];

    ops.forEach((c, i) => {
      test(`${names[i]}: allowed token and JWT pass; other path, other op, bad credentials are refused`, async () => {
        const allowed = await c.run(await fresh(), bearer(fx.tokens.writer));
        expect(allowed.status).toBe(c.ok);
        expect((await c.run(await fresh(), bearer(jwt.valid))).status).toBe(c.ok);

        // Valid token, path outside its grant (only read is granted on shared/*).
        const otherPath = await c.run(`elsewhere/x${n++}`, bearer(fx.tokens.writer));
        expect(otherPath.status).toBe(403);
        const otherOp = await c.run(await fresh(), bearer(fx.tokens[`no-${c.op}`]));
        expect(otherOp.status).toBe(403);
        if (c.op !== "read") expect((await c.run(`shared/y${n++}`, bearer(fx.tokens.writer))).status).toBe(403);

        const target = await fresh();
        const refusals: [string, Record<string, string>][] = [
          ["no token", {}],
          ["bad token", bearer("tk_not-a-real-token")],
          ["malformed header", { Authorization: "Basic dXNlcjpwYXNz" }],
          ["expired JWT", bearer(jwt.expired)],
          ["wrong audience", bearer(jwt.wrongAudience)],
          ["exp=1e300", bearer(jwt.forever)],
          ["wrong key", bearer(jwt.wrongKey)],
        ];
        for (const [why, headers] of refusals) {
          const res = await c.run(target, headers);
          expect({ why, status: res.status }).toEqual({ why, status: 401 });
          expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
        }
        // Refused requests changed nothing: the stream still holds exactly its first message.
        const check = await fetch(`${base}/${target}?offset=-1`, { headers: bearer(fx.tokens.writer) });
        expect(await check.text()).toBe("hello");
      });
    });

    test("the reason is in the body, the token is not", async () => {
      const token = fx.tokens["no-delete"];
      const res = await fetch(`${base}/orders/nope`, { method: "DELETE", headers: bearer(token) });
      expect(res.status).toBe(403);
      const body = await res.text();
      expect(body).toContain("no-delete may not delete");
      expect(body).not.toContain(token);
      const expired = await fetch(`${base}/orders/nope?offset=-1`, { headers: bearer(jwt.expired) });
      expect(await expired.text()).toContain("expired");
    });

    test("the guard sees the route the router sees: short Host headers and dot segments", async () => {
      const raw = (method: string, target: string, host: string, extra = "") =>
        rawRequest(server.port, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`).then(
          (res) => res.slice(9, 12),
        );
      const host = server.url.slice("http://".length);
      // The path is the path whatever the Host's length: /ab/... is no route (http/target.ts).
      expect(await raw("PUT", "/ab/v1/stream/secret", "x")).toBe("404");
      expect(await raw("PUT", "/ab/v1/stream/secret", "x", `Authorization: Bearer ${fx.tokens.writer}\r\n`)).toBe("404");
      // Deno leaves dot segments in request.url (routed as a stream, parsed as /healthz): 400.
      // Bun normalises them itself, so there it is plainly /healthz (no PUT: 404; GET: 200).
      const dotted = [["PUT", "/v1/stream/../../healthz"], ["PUT", "/v1/stream/orders/../../healthz"], ["GET", "/v1/stream/./../../healthz"]];
      for (const [method, target] of dotted) {
        const status = await raw(method, target, host, `Authorization: Bearer ${fx.tokens.writer}\r\n`);
        const want = runtime === "deno" ? "400" : method === "GET" ? "200" : "404";
        expect({ target, status }).toEqual({ target, status: want });
      }
    });

    test("authenticated catch-up reads are private: no shared cache serves them to others", async () => {
      const res = await fetch(`${base}/${await fresh()}?offset=-1`, { headers: bearer(fx.tokens.writer) });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toStartWith("private");
      expect(res.headers.get("cache-control")).not.toContain("public");
    });

    test("forks need read on the source and create on the fork", async () => {
      const source = await fresh();
      const secret = await fresh("orders/secret");
      const forker = fx.rewrite([
        ...currentSpecs(),
        { name: "forker", allow: [{ paths: ["forks/*"], ops: ["create"] }, { paths: ["orders/*"], ops: ["read"] }] },
      ]).forker;
      await reload(server, base, forker);
      const fork = (target: string, from: string) =>
        fetch(`${base}/${target}`, { method: "PUT", headers: { ...bearer(forker), "Stream-Forked-From": `/v1/stream/${from}` } });
      expect((await fork(`forks/f${n++}`, source)).status).toBe(201);
      // No read on orders/secret/* (orders/* is one segment), no create outside forks/*.
      expect((await fork(`forks/f${n++}`, secret)).status).toBe(403);
      expect((await fork(`orders/f${n++}`, source)).status).toBe(403);
      // A source outside the stream root or with dot segments is refused, not resolved.
      expect((await fork(`forks/f${n++}`, `orders/../${secret}`)).status).toBe(403);
      const outside = await fetch(`${base}/forks/f${n++}`, { method: "PUT", headers: { ...bearer(forker), "Stream-Forked-From": "/elsewhere/x" } });
      expect(outside.status).toBe(403);
    });

    test("subscriptions (__ds) and the admin API need admin; health, preflight and unknown routes need nothing", async () => {
      for (const url of [`${base}/__ds/subscriptions/s1`, `${server.url}/v1/admin/streams`]) {
        expect((await fetch(url)).status).toBe(401);
        expect((await fetch(url, { headers: bearer(fx.tokens.writer) })).status).toBe(403);
        // Past authorization the route decides (an unknown subscription: 404; the admin API: 200), never 401/403.
        expect([200, 404]).toContain((await fetch(url, { headers: bearer(fx.tokens.admin) })).status);
      }
      // Callbacks, acks and releases carry the subscription layer's own tokens; the signing keys are public.
      for (const action of ["callback", "ack", "release"]) {
        const res = await fetch(`${base}/__ds/subscriptions/s1/${action}`, { method: "POST", headers: bearer("a-callback-token") });
        // Past the guard: the subscription layer itself refuses the token it cannot verify.
        expect(res.headers.get("www-authenticate")).toBeNull();
        expect((await res.json()).error.code).toBe("TOKEN_INVALID");
      }
      expect((await fetch(`${base}/__ds/jwks.json`)).status).not.toBe(401);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const preflight = await fetch(`${base}/orders/x`, { method: "OPTIONS", headers: { "Access-Control-Request-Method": "PUT" } });
      expect(preflight.status).toBe(204);
      // An admin token is no stream token.
      expect((await fetch(`${base}/orders/x?offset=-1`, { headers: bearer(fx.tokens.admin) })).status).toBe(403);
    });

    test("SIGHUP reloads the token file without dropping a live reader; a broken file keeps the old tokens", async () => {
      const path = await fresh();
      // SSE lifetimes are short on this server; a long-poll is in flight across the reload instead.
      const inFlight = fetch(`${base}/${path}?offset=now&live=long-poll`, { headers: bearer(fx.tokens.writer) });
      const late = fx.rewrite([...currentSpecs(), { name: "late", allow: [{ paths: ["orders/**"], ops: ["read"] }] }]).late;
      expect((await fetch(`${base}/${path}?offset=-1`, { headers: bearer(late) })).status).toBe(401);
      await reload(server, base, late);
      expect((await fetch(`${base}/${path}?offset=-1`, { headers: bearer(late) })).status).toBe(200);
      expect((await inFlight).status).toBe(204);

      // Revocation: a rewritten file without "late" takes it away.
      fx.rewrite(currentSpecs().filter((s) => s.name !== "late"));
      server.proc.kill("SIGHUP");
      await until(async () => (await fetch(`${base}/${path}?offset=-1`, { headers: bearer(late) })).status === 401);

      // A broken file is refused: the tokens loaded before stay valid.
      fx.rewrite("{ not json");
      const refusals = () => server.output().split("kept the previous tokens").length - 1;
      const before = refusals();
      server.proc.kill("SIGHUP");
      // The reload must have run and refused the file (not merely not run yet) before the check.
      await until(async () => refusals() > before);
      expect((await fetch(`${base}/${path}?offset=-1`, { headers: bearer(fx.tokens.writer) })).status).toBe(200);
      expect(server.proc.exitCode).toBeNull();
      fx.rewrite(currentSpecs());
    });

    function currentSpecs() {
      return [
        { name: "writer", allow: [{ paths: ["orders/**"], ops: ALL }, { paths: ["shared/*"], ops: ["read"] }] },
        ...ALL.map((op) => ({ name: `no-${op}`, allow: [{ paths: ["orders/**"], ops: ALL.filter((o) => o !== op) }] })),
        { name: "admin", allow: [{ paths: ["**"], ops: ["admin"] }] },
      ].map((s) => ({ ...s }));
    }
  });
}

/** Sends one raw HTTP/1.1 request and returns the whole response text. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let got = "";
    sock.on("data", (d) => (got += d.toString()));
    sock.on("error", () => {});
    sock.on("close", () => resolve(got));
    sock.write(text);
    setTimeout(() => sock.destroy(), 5_000);
  });
}

/** Reads an SSE response until its first control event, then lets it go. */
async function sse(url: string, headers: Record<string, string>): Promise<Response> {
  const res = await fetch(url, { headers });
  if (res.status !== 200) return res;
  const reader = res.body!.getReader();
  let text = "";
  while (!text.includes("event: control")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  expect(text).toContain("event: control");
  return new Response(null, { status: res.status });
}

/** Sends SIGHUP and waits until `token` is accepted. */
async function reload(server: SpawnedServer, base: string, token: string) {
  server.proc.kill("SIGHUP");
  await until(async () => (await fetch(`${base}/orders/reload-probe?offset=-1`, { headers: { Authorization: `Bearer ${token}` } })).status !== 401);
}

async function until(cond: () => Promise<boolean>, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
