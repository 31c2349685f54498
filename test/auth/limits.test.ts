// Limits through real HTTP: a client over its rate gets 429 while another is unaffected,
// the live-read caps hold and free up when readers leave (Bun and Deno); on Bun, slow or
// stalled clients are cut off while long-polls and SSE sit idle unharmed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { type TokenFixture, writeTokenFile } from "../support/auth.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const HOOK_TIMEOUT_MS = 60_000;
const ALL = [{ paths: ["**"], ops: ["read", "append", "create", "delete"] }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => Promise<boolean> | boolean, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(25);
  }
}

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`rate and live-read limits on ${runtime}`, () => {
    let server: SpawnedServer;
    let fx: TokenFixture;
    let base: string;
    const as = (name: string) => ({ Authorization: `Bearer ${fx.tokens[name]}` });
    const waiters = async () => ((await (await fetch(`${server.url}/healthz`)).json()) as { liveWaiters: number; sseReaders: number });

    fx = writeTokenFile(["ratey", "calm", "la", "lb", "setup"].map((name) => ({ name, allow: ALL })));
    const ahead = spawnAhead({
      runtime,
      quiet: true,
      env: {
        AUTH_TOKENS_FILE: fx.file,
        RATE_LIMIT_RPS: "10",
        RATE_LIMIT_BURST: "10",
        LIVE_READS_PER_PRINCIPAL: "2",
        LIVE_READS_MAX: "3",
        LONG_POLL_TIMEOUT_MS: "1500",
        SSE_MAX_LIFETIME_MS: "30000",
        APPENDS_IN_FLIGHT_MAX: "1",
        // Bun checks idle connections on a 4 s tick, so its timeout fires 0-4 s early: 8 s
        // keeps the stalled body below open for at least 4 s. Deno's body timer is exact.
        REQUEST_IDLE_TIMEOUT_S: runtime === "bun" ? "8" : "2",
      },
    });
    beforeAll(async () => {
      server = await ahead();
      base = `${server.url}/v1/stream`;
      const res = await fetch(`${base}/lim`, { method: "PUT", headers: { ...as("setup"), "Content-Type": "text/plain" }, body: "x" });
      expect(res.status).toBe(201);
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      fx?.cleanup();
    }, HOOK_TIMEOUT_MS);

    test("a client over its rate gets 429 with Retry-After; another client is unaffected", async () => {
      const burst = await Promise.all(Array.from({ length: 30 }, () => fetch(`${base}/lim?offset=-1`, { headers: as("ratey") })));
      const statuses = burst.map((r) => r.status);
      const limited = burst.filter((r) => r.status === 429);
      // 10 in the bucket, plus at most a few refilled while the 30 arrive.
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(10);
      expect(limited.length).toBeGreaterThanOrEqual(10);
      expect(Number(limited[0].headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(await limited[0].text()).toContain("rate limit");
      const calm = await Promise.all(Array.from({ length: 8 }, () => fetch(`${base}/lim?offset=-1`, { headers: as("calm") })));
      expect(calm.map((r) => r.status)).toEqual(Array(8).fill(200));
      // The bucket refills: after a second ratey is served again.
      await sleep(1_100);
      expect((await fetch(`${base}/lim?offset=-1`, { headers: as("ratey") })).status).toBe(200);
    });

    test("live reads are capped per principal and per instance, and freed when they end", async () => {
      const lp = (who: string) => fetch(`${base}/lim?offset=now&live=long-poll`, { headers: as(who) });
      const a1 = lp("la");
      const a2 = lp("la");
      await until(async () => (await waiters()).liveWaiters >= 2);
      const a3 = await lp("la");
      expect(a3.status).toBe(429);
      expect(a3.headers.get("retry-after")).toBe("1");
      expect(await a3.text()).toContain("for this client");
      const b1 = lp("lb");
      await until(async () => (await waiters()).liveWaiters >= 3);
      const b2 = await lp("lb");
      expect(b2.status).toBe(429);
      expect(await b2.text()).toContain("on this server");
      // Catch-up reads are not live reads: not capped.
      expect((await fetch(`${base}/lim?offset=-1`, { headers: as("lb") })).status).toBe(200);
      expect((await Promise.all([a1, a2, b1])).map((r) => r.status)).toEqual([204, 204, 204]);

      // SSE readers hold a slot for as long as they are connected; leaving frees it.
      const controllers = [new AbortController(), new AbortController()];
      const streams = await Promise.all(controllers.map((c) => fetch(`${base}/lim?offset=-1&live=sse`, { headers: as("la"), signal: c.signal })));
      expect(streams.map((r) => r.status)).toEqual([200, 200]);
      await until(async () => (await waiters()).sseReaders >= 2);
      expect((await lp("la")).status).toBe(429);
      for (const c of controllers) c.abort();
      await until(async () => {
        const r = await fetch(`${base}/lim?offset=-1&live=sse`, { headers: as("la") });
        await r.body?.cancel();
        return r.status === 200;
      });
      // And a long-poll that times out frees its slot: three in a row would exceed the cap of two.
      await until(async () => (await waiters()).sseReaders === 0);
      for (let i = 0; i < 3; i++) expect((await lp("la")).status).toBe(204);
    }, 30_000);

    test("appends in flight are capped; a stalled body gives its slot back after the idle timeout", async () => {
      const started = Date.now();
      const stalled = rawClient(server.port, (sock) => {
        sock.write(
          `POST /v1/stream/lim HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${fx.tokens.setup}\r\n` +
            "Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc",
        );
        return () => {};
      }, 15_000, /\r\n\r\n/);
      await sleep(300);
      // Fresh connections: the server closes idle ones after its (short, here) idle timeout,
      // and a pooled one it is closing would fail the POST with a reset.
      const post = () =>
        fetch(`${base}/lim`, { method: "POST", headers: { ...as("calm"), "Content-Type": "text/plain" }, body: "y", keepalive: false });
      const refused = await post();
      expect(refused.status).toBe(429);
      expect(await refused.text()).toContain("appends in flight");
      // Bun closes the connection; Deno cannot, but answers 408 and ends the handler.
      const { closedAfter, received } = await stalled;
      expect(closedAfter).toBeLessThan(10_000);
      if (runtime === "deno") expect(received).toStartWith("HTTP/1.1 408");
      else expect(received).toBe("");
      await until(async () => (await post()).status === 204);
      expect(Date.now() - started).toBeLessThan(12_000);
      // The partial body was never stored: the stream holds its first message and the "y"s.
      const text = await (await fetch(`${base}/lim?offset=-1`, { headers: as("calm") })).text();
      expect(text).not.toContain("abc");
    }, 25_000);
  });
}

describe("connection limits on bun (open mode, by client address)", () => {
  let server: SpawnedServer;
  let base: string;
  const ahead = spawnAhead({
    runtime: "bun",
    quiet: true,
    env: {
      RATE_LIMIT_RPS: "5",
      RATE_LIMIT_BURST: "5",
      TRUST_PROXY: "1",
      REQUEST_IDLE_TIMEOUT_S: "2",
      LONG_POLL_TIMEOUT_MS: "8000",
      SSE_MAX_LIFETIME_MS: "20000",
      MAX_HEADER_BYTES: "4096",
    },
  });
  beforeAll(async () => {
    server = await ahead();
    base = `${server.url}/v1/stream`;
    expect((await fetch(`${base}/conn`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
  }, HOOK_TIMEOUT_MS);
  afterAll(() => server?.stop(), HOOK_TIMEOUT_MS);

  test("without a token the client address is the principal (X-Forwarded-For with TRUST_PROXY)", async () => {
    const from = (ip: string) => fetch(`${base}/conn?offset=-1`, { headers: { "X-Forwarded-For": `203.0.113.7, ${ip}` } });
    const noisy = await Promise.all(Array.from({ length: 12 }, () => from("10.0.0.1")));
    expect(noisy.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(5);
    expect((await from("10.0.0.2")).status).toBe(200);
  });

  test("over-long paths get 414 and oversized headers 431", async () => {
    expect((await fetch(`${base}/${"p".repeat(1100)}?offset=-1`)).status).toBe(414);
    expect((await fetch(`${base}/conn?offset=-1&pad=${"q".repeat(9000)}`)).status).toBe(414);
    expect((await fetch(`${base}/conn?offset=-1`, { headers: { "X-Pad": "h".repeat(5000) } })).status).toBe(431);
  });

  test("a client sending its headers slowly is disconnected, with no response", async () => {
    const head = "GET /v1/stream/conn?offset=-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    const { closedAfter, received } = await rawClient(server.port, (s) => {
      s.write(head);
      // One byte a second: never idle, never done.
      const t = setInterval(() => s.writable && s.write("a"), 1_000);
      return () => clearInterval(t);
    }, 25_000);
    expect(received).toBe("");
    expect(closedAfter).toBeLessThan(20_000);
  }, 30_000);

  test("a client that stalls mid-body is disconnected after the idle timeout", async () => {
    const { closedAfter } = await rawClient(server.port, (s) => {
      s.write("POST /v1/stream/conn HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc");
      return () => {};
    }, 15_000);
    expect(closedAfter).toBeLessThan(8_000);
    // Nothing of the partial body was stored.
    expect(await (await fetch(`${base}/conn?offset=-1`)).text()).toBe("");
  }, 20_000);

  test("long-polls and SSE sit idle past the idle timeout unharmed", async () => {
    const started = Date.now();
    const lp = fetch(`${base}/conn?offset=now&live=long-poll`, { headers: { "X-Forwarded-For": "10.0.1.1" } });
    const sse = await fetch(`${base}/conn?offset=now&live=sse`, { headers: { "X-Forwarded-For": "10.0.1.2" } });
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    await sleep(5_000);
    expect((await fetch(`${base}/conn`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "late" })).status).toBe(204);
    let text = "";
    while (!text.includes("late")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain("data:late");
    await reader.cancel();
    const res = await lp;
    expect([200, 204]).toContain(res.status);
    expect(Date.now() - started).toBeGreaterThan(4_500);
  }, 20_000);
});

/**
 * Opens a raw TCP connection, runs `drive`, and reports when the server closed it (or, with
 * `until`, when the received bytes match it).
 */
function rawClient(port: number, drive: (s: ReturnType<typeof connect>) => () => void, maxMs: number, until?: RegExp) {
  return new Promise<{ closedAfter: number; received: string }>((resolve) => {
    const started = Date.now();
    const s = connect(port, "127.0.0.1");
    let received = "";
    let stop = () => {};
    s.on("connect", () => (stop = drive(s)));
    s.on("data", (d) => {
      received += d.toString();
      if (until?.test(received)) s.destroy();
    });
    s.on("error", () => {});
    const timer = setTimeout(() => s.destroy(), maxMs);
    s.on("close", () => {
      clearTimeout(timer);
      stop();
      resolve({ closedAfter: Date.now() - started, received });
    });
  });
}
