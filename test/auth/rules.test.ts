// Pure parts of auth without a server: globs, operation mapping, the secure default, the
// rate limiter's arithmetic and the X-Forwarded-For rule.
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/settings.ts";
import { clientAddress } from "../../src/auth/client-address.ts";
import { Guard, isLoopback, RefusedToStart } from "../../src/auth/guard.ts";
import { Gate, RateLimiter } from "../../src/auth/limits.ts";
import { parseTarget } from "../../src/http/target.ts";
import { compileGlob } from "../../src/auth/permissions.ts";

describe("globs", () => {
  const cases: [string, string, boolean][] = [
    ["orders/**", "orders", true],
    ["orders/**", "orders/a", true],
    ["orders/**", "orders/a/b/c", true],
    ["orders/**", "ordersx/a", false],
    ["orders/*", "orders/a", true],
    ["orders/*", "orders/a/b", false],
    ["orders/*", "orders", false],
    ["orders/*", "orders/", false],
    ["/orders/*", "orders/a", true],
    ["*/events", "eu/events", true],
    ["*/events", "eu/x/events", false],
    ["**/events", "a/b/events", true],
    ["**/events", "events", true],
    ["a/**/z", "a/z", true],
    ["a/**/z", "a/b/c/z", true],
    ["a/**/z", "a/b/c/y", false],
    ["a*", "abc", false],
    ["**", "anything/at/all", true],
    ["orders/a", "orders//a", false],
    ["orders/%2Fa", "orders/%2Fa", true],
  ];
  for (const [pattern, path, want] of cases) {
    test(`${pattern} ${want ? "matches" : "does not match"} ${path}`, () => expect(compileGlob(pattern)(path)).toBe(want));
  }
});

describe("operation mapping (the route table)", () => {
  // The route's access with its live/append flags, as the guard reads them.
  const op = (method: string, url: string, headers: Record<string, string> = {}) => {
    const t = parseTarget(method, `http://h${url}`, "h");
    const access = t.route.access(t, new Headers(headers));
    return access.kind === "guarded" ? { ...access, live: Boolean(t.route.live), append: Boolean(t.route.append) } : access;
  };
  test("stream methods", () => {
    expect(op("GET", "/v1/stream/a/b?offset=-1")).toEqual({ kind: "guarded", checks: [{ op: "read", path: "a/b" }], live: false, append: false });
    expect(op("GET", "/v1/stream/a?offset=now&live=sse")).toMatchObject({ live: true });
    expect(op("GET", "/v1/stream/a?offset=now&live=long-poll")).toMatchObject({ live: true });
    expect(op("HEAD", "/v1/stream/a")).toMatchObject({ checks: [{ op: "read" }], live: false });
    expect(op("POST", "/v1/stream/a")).toMatchObject({ checks: [{ op: "append", path: "a" }], append: true });
    expect(op("DELETE", "/v1/stream/a")).toMatchObject({ checks: [{ op: "delete", path: "a" }] });
    expect(op("PATCH", "/v1/stream/a")).toMatchObject({ checks: [{ op: "delete", path: "a" }] });
    expect(op("PUT", "/v1/stream/f", { "Stream-Forked-From": "/v1/stream/src/x" })).toMatchObject({
      checks: [{ op: "create", path: "f" }, { op: "read", path: "src/x" }],
    });
    expect(op("PUT", "/v1/stream/f", { "Stream-Forked-From": "src/x" })).toMatchObject({ checks: [{}, { op: "read", path: null }] });
    expect(op("PUT", "/v1/stream/f", { "Stream-Forked-From": "/v1/stream/a/%2E%2E/b" })).toMatchObject({ checks: [{}, { path: null }] });
  });
  test("subscriptions and admin need admin; the rest is public", () => {
    expect(op("POST", "/v1/stream/__ds/subscriptions/x")).toMatchObject({ checks: [{ op: "admin", path: "__ds/subscriptions/x" }], append: false });
    expect(op("POST", "/v1/stream/__ds/subscriptions/x/claim")).toMatchObject({ checks: [{ op: "admin", path: "__ds/subscriptions/x/claim" }] });
    expect(op("DELETE", "/v1/stream/__ds/subscriptions/x")).toMatchObject({ checks: [{ op: "admin" }] });
    // Callback, ack and release carry the subscription layer's own tokens; its JWKS is public.
    for (const action of ["callback", "ack", "release"]) {
      expect(op("POST", `/v1/stream/__ds/subscriptions/x/${action}`)).toEqual({ kind: "self" });
      expect(op("GET", `/v1/stream/__ds/subscriptions/x/${action}`)).toMatchObject({ checks: [{ op: "admin" }] });
    }
    expect(op("POST", "/v1/stream/__ds/subscriptions/x/y/ack")).toMatchObject({ checks: [{ op: "admin" }] });
    expect(op("GET", "/v1/stream/__ds/jwks.json")).toEqual({ kind: "self" });
    expect(op("PUT", "/v1/stream/__ds/jwks.json")).toMatchObject({ checks: [{ op: "admin" }] });
    expect(op("GET", "/v1/admin/streams")).toMatchObject({ checks: [{ op: "admin", path: "__admin/streams" }] });
    expect(op("GET", "/v1/admin")).toMatchObject({ checks: [{ op: "admin" }] });
    // Admin preflights are no longer public: nothing under /v1/admin is granted to other origins.
    expect(op("OPTIONS", "/v1/admin/x")).toMatchObject({ checks: [{ op: "admin", path: "__admin/x" }] });
    for (const [m, u] of [["GET", "/healthz"], ["GET", "/metrics"], ["GET", "/ui/index.html"], ["OPTIONS", "/v1/stream/a"], ["GET", "/X/v1/admin/streams"]]) {
      expect(op(m, u)).toEqual({ kind: "public" });
    }
  });
  test("one label per route, the Host never moves the path", () => {
    const label = (m: string, u: string, host = "h") => parseTarget(m, `http://${host}${u}`, host).route.operation;
    expect(["PUT", "POST", "DELETE", "HEAD", "OPTIONS"].map((m) => label(m, "/v1/stream/a"))).toEqual(["create", "append", "delete", "head", "preflight"]);
    expect(["", "?offset=-1", "?offset=-1&live=sse", "?live=long-poll&offset=-1"].map((q) => label("GET", `/v1/stream/a${q}`))).toEqual(["read", "read", "sse", "long-poll"]);
    expect([label("GET", "/healthz"), label("GET", "/metrics"), label("GET", "/v1/admin/streams"), label("GET", "/ui/"), label("POST", "/v1/stream/__ds/x")]).toEqual(["health", "metrics", "admin", "ui", "subscription"]);
    for (const host of ["a:1", "x", "abc", "[::1]:9"]) {
      expect(label("GET", "/X/v1/admin/content/t/a/x", host)).toBe("other");
      expect(label("POST", "/X/v1/stream/s", host)).toBe("other");
    }
  });
  test("malformed targets are refused before any route", () => {
    const parse = (u: string, host: string | null = "h") => () => parseTarget("GET", u, host);
    expect(parse("http://h/v1/stream/foo%")).toThrow(/%/);
    expect(parse("http://h/v1/stream/a%zz/b")).toThrow(/two hex digits/);
    expect(parse("http://h/v1/stream/a%2")).toThrow(/two hex digits/);
    expect(parse("http://h/v1/stream/a%25")).not.toThrow();
    expect(parse("http://h/v1/stream/a/../b")).toThrow(/normal form/);
    expect(parse("http://h/v1/stream/a/%2e%2E/b")).toThrow(/normal form/);
    expect(parse("http://a/b/v1/stream/s", "a/b")).toThrow(/Host/);
    expect(parse("/v1/stream/s", "a/b")).toThrow(/Host/);
    expect(parse("http://h/v1/stream/s", null)).toThrow(/Host/);
    expect(parse("http://evil/v1/stream/s", "h")).toThrow(/authority/);
    expect(parse("http://a.b/v1/stream/s", "A.B:80")).not.toThrow();
  });
});

describe("secure default", () => {
  const base = { PORT: "0", DATA_DIR: "memory://" };
  test("loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.1", "example.com"]) expect(isLoopback(h)).toBe(false);
  });
  test("no auth on a public address is refused unless AUTH=none; AUTH=none with auth set is refused too", async () => {
    await expect(Guard.create(loadConfig({ ...base, HOST: "0.0.0.0" }))).rejects.toThrow(RefusedToStart);
    await expect(Guard.create(loadConfig({ ...base, HOST: "0.0.0.0" }))).rejects.toThrow(/refusing to serve on 0\.0\.0\.0/);
    expect((await Guard.create(loadConfig({ ...base, HOST: "0.0.0.0", AUTH: "none" }))).authEnabled).toBe(false);
    const jwt = await Guard.create(loadConfig({ ...base, HOST: "0.0.0.0", AUTH_JWT_SECRET: "x".repeat(32) }));
    expect(jwt.authEnabled).toBe(true);
    await expect(Guard.create(loadConfig({ ...base, AUTH: "none", AUTH_JWT_SECRET: "x".repeat(32) }))).rejects.toThrow(RefusedToStart);
    await expect(Guard.create(loadConfig({ ...base, AUTH_JWT_SECRET: "short" }))).rejects.toThrow(/32 bytes/);
    await expect(Guard.create(loadConfig({ ...base, AUTH_TOKENS_FILE: "/nonexistent/tokens.json" }))).rejects.toThrow(/AUTH_TOKENS_FILE/);
    expect(() => loadConfig({ ...base, AUTH: "off" })).toThrow(/AUTH/);
  });
});

describe("limits", () => {
  test("token bucket: burst, then the rate; keys are independent", () => {
    let now = 0;
    const rl = new RateLimiter(2, 3, () => now);
    expect([rl.take("a"), rl.take("a"), rl.take("a")]).toEqual([0, 0, 0]);
    expect(rl.take("a")).toBe(1);
    expect(rl.take("b")).toBe(0);
    now += 500; // one token back at 2/s
    expect(rl.take("a")).toBe(0);
    expect(rl.take("a")).toBeGreaterThan(0);
    rl.close();
  });
  test("gate: per key and total caps; release is idempotent", () => {
    const g = new Gate(2, 3);
    const a1 = g.tryAcquire("a") as () => void;
    g.tryAcquire("a");
    expect(g.tryAcquire("a")).toBe("key");
    g.tryAcquire("b");
    expect(g.tryAcquire("c")).toBe("total");
    a1();
    a1();
    expect(g.total).toBe(2);
    expect(typeof g.tryAcquire("a")).toBe("function");
  });
  test("X-Forwarded-For counts only with TRUST_PROXY, from the right", () => {
    const req = new Request("http://h/", { headers: { "X-Forwarded-For": "6.6.6.6, 1.2.3.4, 10.0.0.9" } });
    expect(clientAddress(req, "127.0.0.1", 0)).toBe("127.0.0.1");
    expect(clientAddress(req, "127.0.0.1", 1)).toBe("10.0.0.9");
    expect(clientAddress(req, "127.0.0.1", 2)).toBe("1.2.3.4");
    expect(clientAddress(req, "127.0.0.1", 9)).toBe("127.0.0.1");
  });
});
