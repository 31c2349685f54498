// Subscriptions through real sockets on one instance (embedded PGlite), with a real webhook
// receiver: bad input gets its 4xx and changes nothing; signatures verify against the JWKS;
// callbacks and acks are fenced by generation, wake id, lease and incarnation; cursors only
// move forward; failed deliveries are retried with backoff; deleted streams leave.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { freshDataDir } from "../support/spawn-server.ts";
import { importJWK } from "jose";
import { loadConfig } from "../../src/settings.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { parseMetrics, sample } from "../support/metrics.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

let server: RunningServer;
let base: string;
let hook: Receiver;
const dataDir = freshDataDir(); // a migrated PGlite folder
const ENV = { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", PORT: "0", DATA_DIR: dataDir, SUBSCRIPTION_TICK_MS: "100", SUBSCRIPTION_BACKSTOP_MS: "500", LONG_POLL_TIMEOUT_MS: "300" };

beforeAll(async () => {
  server = await startServer(loadConfig(ENV));
  base = `${server.url}/v1/stream`;
  hook = await startReceiver();
}, 60_000);
afterAll(async () => {
  await hook.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sub = (id: string, rest = "") => `${base}/__ds/subscriptions/${encodeURIComponent(id)}${rest}`;
const send = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
const stream = (path: string, body?: string, method = "POST") =>
  fetch(`${base}/${path}`, { method, headers: { "content-type": "application/json" }, body });
const offset = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;
const getSub = async (id: string) => (await fetch(sub(id))).json() as Promise<Record<string, any>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The subscription counters on /metrics now (this process runs one server). */
const counters = async () => {
  const m = parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
  const get = (n: string) => sample(m, `ds_subscription_${n}_total`);
  return { deliveries: get("deliveries"), failures: get("delivery_failures"), retries: get("retries"), leaseExpiries: get("lease_expiries") };
};

async function until<T>(probe: () => Promise<T | undefined>, ms = 8_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(25);
  }
}

describe("bad input gets a 4xx with a code and changes nothing", () => {
  const id = "guarded";
  const config = { type: "webhook", pattern: "guarded-only/*", webhook: { url: "http://127.0.0.1:9/never" }, description: "kept" };
  let token = "";
  beforeAll(async () => {
    expect((await send("PUT", sub(id), config)).status).toBe(201);
    // A second, pull-wake subscription gives a real (claim) token to misuse.
    await stream("wake/guard", "[]", "PUT");
    await send("PUT", sub("guard-pull"), { type: "pull-wake", streams: ["guard/p"], wake_stream: "wake/guard" });
    await stream("guard/p", '{"a":1}', "PUT");
    const claim = await send("POST", sub("guard-pull", "/claim"), { worker: "w" });
    token = (await claim.json()).token;
  });

  const cases: [string, () => Promise<Response>, number, string][] = [
    ["invalid JSON", () => send("PUT", sub(id), "{oops"), 400, "INVALID_REQUEST"],
    ["empty body", () => send("PUT", sub("fresh")), 400, "INVALID_REQUEST"],
    ["lease too short", () => send("PUT", sub("fresh"), { ...config, lease_ttl_ms: 10 }), 400, "INVALID_REQUEST"],
    ["no pattern or streams", () => send("PUT", sub("fresh"), { type: "webhook", webhook: config.webhook }), 400, "INVALID_REQUEST"],
    // (Private and loopback webhook addresses: this server allows them for its receiver;
    // test/subscriptions/ssrf-http.test.ts checks the default, on Bun and Deno.)
    ["same id, other configuration", () => send("PUT", sub(id), { ...config, description: "changed" }), 409, "SUBSCRIPTION_ALREADY_EXISTS"],
    ["unknown id (GET)", () => fetch(sub("nope")), 404, "SUBSCRIPTION_NOT_FOUND"],
    ["unknown id (DELETE)", () => send("DELETE", sub("nope")), 404, "SUBSCRIPTION_NOT_FOUND"],
    ["unknown id (add streams)", () => send("POST", sub("nope", "/streams"), { streams: ["a"] }), 404, "SUBSCRIPTION_NOT_FOUND"],
    ["streams not a list", () => send("POST", sub(id, "/streams"), { streams: "a" }), 400, "INVALID_REQUEST"],
    ["stream path in __ds", () => send("POST", sub(id, "/streams"), { streams: ["__ds/x"] }), 400, "INVALID_REQUEST"],
    ["bad %-encoding", () => send("DELETE", `${sub(id)}/streams/%E0%A4%A`), 400, "INVALID_REQUEST"],
    ["callback without token", () => send("POST", sub(id, "/callback"), { wake_id: "w", generation: 1 }), 401, "TOKEN_INVALID"],
    ["callback with a forged token", () => send("POST", sub(id, "/callback"), { wake_id: "w", generation: 1 }, { authorization: "Bearer eyJhbGciOiJub25lIn0.e30." }), 401, "TOKEN_INVALID"],
    ["a token of another subscription", () => send("POST", sub(id, "/callback"), { wake_id: "w", generation: 1 }, { authorization: `Bearer ${token}` }), 401, "TOKEN_INVALID"],
    ["token in the query string only", () => send("POST", `${sub("guard-pull", "/ack")}?token=${token}`, { wake_id: "w", generation: 1 }), 401, "TOKEN_INVALID"],
    // (The token is checked first: the body of a call with a token for its subscription.)
    ["ack body not an object", () => send("POST", sub("guard-pull", "/ack"), "[1]", { authorization: `Bearer ${token}` }), 400, "INVALID_REQUEST"],
    ["ack with a malformed offset", () => send("POST", sub("guard-pull", "/ack"), { wake_id: "w", generation: 1, acks: [{ stream: "guard/p", offset: "-1" }] }, { authorization: `Bearer ${token}` }), 400, "INVALID_REQUEST"],
    ["ack with a stale wake id", () => send("POST", sub("guard-pull", "/ack"), { wake_id: "w_old", generation: 1, done: true }, { authorization: `Bearer ${token}` }), 409, "FENCED"],
    ["claim of a webhook subscription", () => send("POST", sub(id, "/claim"), { worker: "w" }), 400, "INVALID_REQUEST"],
    ["claim without a worker", () => send("POST", sub("guard-pull", "/claim"), {}), 400, "INVALID_REQUEST"],
    ["claim while held", () => send("POST", sub("guard-pull", "/claim"), { worker: "other" }), 409, "ALREADY_CLAIMED"],
    ["NUL in the description", () => send("PUT", sub("fresh"), { ...config, description: "a\u0000b" }), 400, "INVALID_REQUEST"],
    ["control character in the webhook URL", () => send("PUT", sub("fresh"), { ...config, webhook: { url: "http://127.0.0.1:9/a\nb" } }), 400, "WEBHOOK_URL_REJECTED"],
    ["NUL in the worker name", () => send("POST", sub("guard-pull", "/claim"), { worker: "w\u0000" }), 400, "INVALID_REQUEST"],
    ["NUL in the subscription id", () => fetch(`${base}/__ds/subscriptions/a%00b`), 400, "INVALID_REQUEST"],
    ["unknown control path", () => fetch(`${base}/__ds/elsewhere`), 404, "NOT_FOUND"],
    ["unknown subscription action", () => send("POST", sub(id, "/explode"), {}), 404, "NOT_FOUND"],
  ];

  for (const [label, run, status, code] of cases) {
    test(label, async () => {
      const before = [await getSub(id), await getSub("guard-pull")];
      const res = await run();
      expect(res.status).toBe(status);
      expect((await res.json()).error.code).toBe(code);
      expect([await getSub(id), await getSub("guard-pull")]).toEqual(before);
    });
  }

  test("wrong method is 405, JWKS is cacheable", async () => {
    expect((await send("PATCH", sub(id), {})).status).toBe(405);
    const jwks = await fetch(`${base}/__ds/jwks.json`);
    expect(jwks.headers.get("content-type")).toContain("application/jwk-set+json");
    expect(jwks.headers.get("cache-control")).toContain("max-age=300");
  });
});

describe("webhook delivery", () => {
  test("signed, callback fenced by generation and lease, cursors only forward", async () => {
    const from = hook.deliveries.length;
    expect((await send("PUT", sub("wh"), { type: "webhook", streams: ["wh/a"], webhook: { url: hook.url }, lease_ttl_ms: 5000 })).status).toBe(201);
    await stream("wh/a", "[1,2,3]", "PUT");
    const d = await hook.next((x) => x.body.subscription_id === "wh", 8000, from);
    // Ed25519 over "<t>.<body>" with the key the JWKS names.
    const [, t, kid, sig] = d.signature!.match(/^t=(\d+),kid=([^,]+),ed25519=([\w-]+)$/)!;
    const jwks = await (await fetch(`${base}/__ds/jwks.json`)).json();
    const jwk = jwks.keys.find((k: { kid: string }) => k.kid === kid);
    const key = (await importJWK({ ...jwk, alg: "EdDSA" }, "EdDSA")) as CryptoKey;
    const ok = await crypto.subtle.verify("Ed25519", key, Buffer.from(sig, "base64url"), new TextEncoder().encode(`${t}.${d.raw}`));
    expect(ok).toBe(true);
    expect(d.body.streams).toEqual([{ path: "wh/a", link_type: "explicit", acked_offset: offset(0), tail_offset: offset(3), has_pending: true }]);

    const auth = { authorization: `Bearer ${d.body.callback_token}` };
    const call = (body: unknown) => send("POST", d.body.callback_url, body, auth);
    const w = { wake_id: d.body.wake_id, generation: d.body.generation };
    // Heartbeat with a partial ack.
    expect(await (await call({ ...w, acks: [{ stream: "wh/a", offset: offset(2) }] })).json()).toEqual({ ok: true, next_wake: false });
    // Backwards, or past the tail: refused, cursor kept.
    expect((await call({ ...w, acks: [{ stream: "wh/a", offset: offset(1) }] })).status).toBe(409);
    expect((await call({ ...w, acks: [{ stream: "wh/a", offset: offset(9) }] })).status).toBe(409);
    expect((await call({ ...w, acks: [{ stream: "wh/nope", offset: offset(1) }] })).status).toBe(409);
    expect((await getSub("wh")).streams[0].acked_offset).toBe(offset(2));
    // Wrong generation: fenced.
    expect((await (await call({ ...w, generation: w.generation + 1 })).json()).error.code).toBe("FENCED");
    // Done with work left (3rd message): a new wake follows with a new generation.
    expect(await (await call({ ...w, done: true })).json()).toEqual({ ok: true, next_wake: true });
    const d2 = await hook.next((x) => x.body.subscription_id === "wh" && x.body.generation > w.generation, 8000, from);
    expect(d2.body.wake_id).not.toBe(w.wake_id);
    expect(d2.body.streams[0].acked_offset).toBe(offset(2));
    // The old token is dead for the new wake.
    expect((await call({ wake_id: d2.body.wake_id, generation: d2.body.generation, done: true })).status).toBe(409);
  });

  test("a lapsed lease ends the wake and wakes again; its callback is fenced", async () => {
    const from = hook.deliveries.length;
    const before = await counters();
    await send("PUT", sub("lapse"), { type: "webhook", streams: ["lapse/a"], webhook: { url: hook.url }, lease_ttl_ms: 1000 });
    await stream("lapse/a", "[1]", "PUT");
    const d1 = await hook.next((x) => x.body.subscription_id === "lapse", 8000, from);
    const d2 = await hook.next((x) => x.body.subscription_id === "lapse" && x.body.generation > d1.body.generation, 8000, from);
    expect(d2.at - d1.at).toBeGreaterThanOrEqual(900);
    const late = await send("POST", d1.body.callback_url, { wake_id: d1.body.wake_id, generation: d1.body.generation, done: true }, { authorization: `Bearer ${d1.body.callback_token}` });
    expect((await late.json()).error.code).toBe("FENCED");
    await send("DELETE", sub("lapse"));
    expect((await counters()).leaseExpiries - before.leaseExpiries).toBeGreaterThanOrEqual(1);
  });

  test("failed deliveries are retried with backoff (status failed meanwhile); done auto-acks", async () => {
    const from = hook.deliveries.length;
    let failures = 2;
    const before = await counters();
    hook.answer = (d) => (d.body.subscription_id === "retry" && failures-- > 0 ? { status: 503 } : { body: { done: true } });
    try {
      await send("PUT", sub("retry"), { type: "webhook", streams: ["retry/a"], webhook: { url: hook.url } });
      await stream("retry/a", "[1]", "PUT");
      const first = await hook.next((x) => x.body.subscription_id === "retry", 8000, from);
      await until(async () => ((await getSub("retry")).status === "failed" ? true : undefined));
      const third = await until(async () => hook.deliveries.slice(from).filter((x) => x.body.subscription_id === "retry")[2]);
      const times = hook.deliveries.slice(from).filter((x) => x.body.subscription_id === "retry").map((x) => x.at);
      // 1 s then 2 s (each ±20%). Each send is a wake of its own (PROTOCOL 7.3: generation
      // increments for every wake): a later one, and the failed send's token is fenced.
      expect(times[1] - times[0]).toBeGreaterThanOrEqual(750);
      expect(times[2] - times[1]).toBeGreaterThanOrEqual(1550);
      const sends = hook.deliveries.slice(from).filter((x) => x.body.subscription_id === "retry").slice(0, 3);
      expect(new Set(sends.map((x) => x.body.wake_id)).size).toBe(3);
      expect(sends[1].body.generation).toBeGreaterThan(sends[0].body.generation);
      expect(third.body.generation).toBeGreaterThan(sends[1].body.generation);
      const stale = await send("POST", first.body.callback_url, { wake_id: first.body.wake_id, generation: first.body.generation, done: true }, { authorization: `Bearer ${first.body.callback_token}` });
      expect((await stale.json()).error.code).toBe("FENCED");
      const acked = await until(async () => {
        const s = await getSub("retry");
        return s.streams[0].acked_offset === offset(1) && s.status === "active" ? s : undefined;
      });
      expect(acked.status).toBe("active");
      // Two failed attempts, two retries, one delivery, as /metrics counts them.
      const after = await counters();
      expect(after.failures - before.failures).toBe(2);
      expect(after.retries - before.retries).toBe(2);
      expect(after.deliveries - before.deliveries).toBeGreaterThanOrEqual(1);
    } finally {
      hook.answer = () => ({});
    }
  }, 15_000);

  test("data appended while its wake is being delivered gets the next wake once the webhook says done", async () => {
    // While this instance delivers, appends to the subscription's streams send no wake query
    // (trigger.ts); the end of the delivery must still notice them, whether they committed
    // before the statement that ends the wake or after it.
    for (const [i, lateMs] of [[0, 0], [1, 150]] as const) {
      const id = `during-${i}`;
      const from = hook.deliveries.length;
      let appended = false;
      hook.answer = async (d) => {
        if (d.body.subscription_id !== id || appended) return { body: { done: true } };
        appended = true;
        expect((await stream(`${id}/a`, "[2]")).status).toBe(204);
        // The second round answers first and appends once the answer is on its way.
        if (lateMs > 0) setTimeout(() => void stream(`${id}/a`, "[3]"), lateMs / 10);
        return { body: { done: true } };
      };
      try {
        await send("PUT", sub(id), { type: "webhook", streams: [`${id}/a`], webhook: { url: hook.url } });
        await stream(`${id}/a`, "[1]", "PUT");
        const first = await hook.next((x) => x.body.subscription_id === id, 8000, from);
        expect(first.body.streams[0].tail_offset).toBe(offset(1));
        const want = lateMs > 0 ? 3 : 2;
        // Later wakes pick up what came meanwhile, ending at the last append.
        const last = await hook.next((x) => x.body.subscription_id === id && x.body.streams[0].tail_offset === offset(want), 8000, from);
        expect(Number(last.body.generation)).toBeGreaterThan(Number(first.body.generation));
        const acked = await until(async () => {
          const s = await getSub(id);
          return s.streams[0].acked_offset === offset(want) ? s : undefined;
        });
        expect(acked.streams[0].acked_offset).toBe(offset(want));
      } finally {
        hook.answer = () => ({});
      }
    }
  });

  test("delete tombstones: the old token cannot act, not even on a re-created subscription", async () => {
    const from = hook.deliveries.length;
    const config = { type: "webhook", streams: ["tomb/a"], webhook: { url: hook.url } };
    await send("PUT", sub("tomb"), config);
    await stream("tomb/a", "[1,2]", "PUT");
    const d = await hook.next((x) => x.body.subscription_id === "tomb", 8000, from);
    expect((await send("DELETE", sub("tomb"))).status).toBe(204);
    const body = { wake_id: d.body.wake_id, generation: d.body.generation, acks: [{ stream: "tomb/a", offset: offset(2) }], done: true };
    const auth = { authorization: `Bearer ${d.body.callback_token}` };
    expect((await send("POST", d.body.callback_url, body, auth)).status).toBe(404);
    expect((await send("PUT", sub("tomb"), config)).status).toBe(201);
    const res = await send("POST", d.body.callback_url, body, auth);
    expect((await res.json()).error.code).toBe("FENCED");
    expect((await getSub("tomb")).streams[0].acked_offset).toBe(offset(2)); // linked at the tail on re-creation, not moved by the ack
    await send("DELETE", sub("tomb"));
  });

  test("glob backfill links existing streams at their tail; new matching streams have their first data pending; deleted streams leave", async () => {
    await stream("glob/old", "[1,2]", "PUT");
    const from = hook.deliveries.length;
    await send("PUT", sub("globby"), { type: "webhook", pattern: "glob/*", webhook: { url: hook.url } });
    expect((await getSub("globby")).streams).toEqual([{ path: "glob/old", link_type: "glob", acked_offset: offset(2) }]);
    await stream("glob/new", "[7]", "PUT");
    const d = await hook.next((x) => x.body.subscription_id === "globby", 8000, from);
    expect(d.body.streams.find((s) => s.path === "glob/new")).toMatchObject({ acked_offset: offset(0), tail_offset: offset(1), has_pending: true });
    await fetch(`${base}/glob/new`, { method: "DELETE" });
    expect((await getSub("globby")).streams.map((s: { path: string }) => s.path)).toEqual(["glob/old"]);
    await send("DELETE", sub("globby"));
  });
});

describe("pull-wake", () => {
  test("release with work pending writes another wake event; an expired lease lets another worker claim", async () => {
    await stream("wake/pw", "[]", "PUT");
    await send("PUT", sub("pw"), { type: "pull-wake", streams: ["pw/a"], wake_stream: "wake/pw", lease_ttl_ms: 1000 });
    await stream("pw/a", "[1]", "PUT");
    const events = async () => (await (await fetch(`${base}/wake/pw?offset=-1`)).json()) as { generation: number; stream: string }[];
    await until(async () => ((await events()).length >= 1 ? true : undefined));
    expect((await events())[0]).toMatchObject({ stream: "pw/a", generation: 1 });
    const c1 = await (await send("POST", sub("pw", "/claim"), { worker: "a" })).json();
    expect((await send("POST", sub("pw", "/release"), { wake_id: c1.wake_id, generation: c1.generation }, { authorization: `Bearer ${c1.token}` })).status).toBe(204);
    const ev = await until(async () => ((await events()).find((e) => e.generation > c1.generation)));
    expect(ev.stream).toBe("pw/a");
    const c2 = await (await send("POST", sub("pw", "/claim"), { worker: "b" })).json();
    expect(c2.generation).toBeGreaterThan(c1.generation);
    // b goes silent: after its lease another worker claims, and b is fenced.
    const c3 = await until(async () => {
      const r = await send("POST", sub("pw", "/claim"), { worker: "c" });
      return r.status === 200 ? r.json() : undefined;
    }, 5000);
    expect(c3.generation).toBeGreaterThan(c2.generation);
    const stale = await send("POST", sub("pw", "/ack"), { wake_id: c2.wake_id, generation: c2.generation, acks: [{ stream: "pw/a", offset: offset(1) }], done: true }, { authorization: `Bearer ${c2.token}` });
    expect((await stale.json()).error.code).toBe("FENCED");
    expect((await getSub("pw")).streams[0].acked_offset).toBe(offset(0));
    const done = await send("POST", sub("pw", "/ack"), { wake_id: c3.wake_id, generation: c3.generation, acks: [{ stream: "pw/a", offset: offset(1) }], done: true }, { authorization: `Bearer ${c3.token}` });
    expect(await done.json()).toEqual({ ok: true, next_wake: false });
    expect((await send("POST", sub("pw", "/claim"), { worker: "d" })).status).toBe(409); // NO_PENDING_WORK
  });
});

test("a restart keeps the signing key, subscriptions and cursors", async () => {
  const kid = (await (await fetch(`${base}/__ds/jwks.json`)).json()).keys[0].kid;
  const before = await getSub("pw");
  await server.stop();
  server = await startServer(loadConfig(ENV));
  base = `${server.url}/v1/stream`;
  expect((await (await fetch(`${base}/__ds/jwks.json`)).json()).keys[0].kid).toBe(kid);
  expect(await getSub("pw")).toEqual(before);
}, 60_000);
