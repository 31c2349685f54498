// Metrics, logs and request ids of the real server, spawned as a process on Bun and on
// Deno (Postgres when DATABASE_URL is set, PGlite otherwise): traffic of every kind moves
// the figures on /metrics (served on METRICS_PORT), promtool accepts the exposition, every
// stdout line is one JSON object, and the access log lines of an append and of a 4xx carry
// the request id that the response returned. In-process: /metrics on the main port, and
// TRUST_REQUEST_ID=false.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { loadConfig } from "../../src/settings.ts";
import { fromMigratedDump } from "../support/backends.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";
import { hasPromtool, parseMetrics, promtoolCheck, PROMTOOL, sample } from "../support/metrics.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { freePort, type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

if (!hasPromtool) console.warn(`test/observability: ${PROMTOOL} not installed, the promtool check is skipped`);

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`observability of a spawned server on ${runtime} + ${databaseUrl ? "postgres" : "pglite"}`, () => {
    let server: SpawnedServer;
    let metricsUrl: string;
    let base: string;
    const schema = uniqueSchema("obs");
    // Our logs go to stdout; stderr holds the runtimes' own notices (Deno prints one).
    const logLines = () => server.stdout().split("\n").filter((l) => l !== "");
    const scrape = async () => {
      const res = await fetch(metricsUrl);
      expect(res.status).toBe(200);
      return parseMetrics(await res.text());
    };

    const metricsPort = freePort();
    const ahead = spawnAhead(
      metricsPort.then((port) => ({
        runtime,
        databaseUrl,
        schema: databaseUrl ? schema : undefined,
        quiet: true,
        env: {
          ACCESS_LOG: "true",
          LOG_FORMAT: "json",
          METRICS_PORT: String(port),
          SWEEP_INTERVAL_MS: "200",
          LONG_POLL_TIMEOUT_MS: "10000",
          BACKSTOP_MS: "200",
          DATABASE_POOL_SIZE: "2",
        },
      })),
    );
    beforeAll(async () => {
      server = await ahead();
      metricsUrl = `http://127.0.0.1:${await metricsPort}/metrics`;
      base = `${server.url}/v1/stream`;
    }, 90_000);

    afterAll(async () => {
      await server?.stop();
      if (databaseUrl) await dropSchema(schema);
    });

    test("traffic of every kind moves the figures; no label names a stream", async () => {
      const before = await scrape();
      const name = `obs-${runtime}-${Date.now()}`;
      expect((await fetch(`${base}/${name}`, { method: "PUT", headers: { "Content-Type": "application/json" } })).status).toBe(201);

      // A live SSE reader (joins the hub once caught up) and a long-poll, both at the tail.
      const abort = new AbortController();
      const sse = await fetch(`${base}/${name}?offset=now&live=sse`, { signal: abort.signal });
      expect(sse.status).toBe(200);
      const reader = sse.body!.getReader();
      await until("the SSE reader in its hub", async () => sample(await scrape(), "ds_sse_hub_members") === 1);
      const longPoll = fetch(`${base}/${name}?offset=now&live=long-poll`);
      // The hub's waiter and the long-poll.
      await until("two live waiters", async () => sample(await scrape(), "ds_live_waiters") >= 2);

      const appends = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fetch(`${base}/${name}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: `[{"n":${i}}]` })),
      );
      expect(appends.map((r) => r.status)).toEqual(Array(20).fill(204));
      expect((await longPoll).status).toBe(200);
      let seen = "";
      const decoder = new TextDecoder();
      while (!seen.includes('"n":')) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += decoder.decode(value);
      }
      expect(seen).toContain('"n":');
      abort.abort();
      await reader.cancel().catch(() => {});

      expect((await fetch(`${base}/${name}?offset=-1`)).status).toBe(200);
      expect((await fetch(`${base}/${name}`, { method: "HEAD" })).status).toBe(200);
      expect((await fetch(`${base}/${name}`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" })).status).toBe(409);
      expect((await fetch(`${base}/${name}-missing?offset=-1`)).status).toBe(404);
      expect((await fetch(`${base}/${name}-gone`, { method: "PUT" })).status).toBe(201);
      expect((await fetch(`${base}/${name}-gone`, { method: "DELETE" })).status).toBe(204);
      await sleep(500); // at least one expiry sweep (SWEEP_INTERVAL_MS=200)

      const after = await scrape();
      const moved = (key: string) => sample(after, key) - sample(before, key);
      const req = (method: string, operation: string, status: number) =>
        moved(`ds_http_requests_total{method="${method}",operation="${operation}",status="${status}"}`);
      expect(req("PUT", "create", 201)).toBe(2);
      expect(req("POST", "append", 204)).toBe(20);
      expect(req("POST", "append", 409)).toBe(1);
      expect(req("GET", "sse", 200)).toBe(1);
      expect(req("GET", "long-poll", 200)).toBe(1);
      expect(req("GET", "read", 200)).toBe(1);
      expect(req("GET", "read", 404)).toBe(1);
      expect(req("HEAD", "head", 200)).toBe(1);
      expect(req("DELETE", "delete", 204)).toBe(1);
      expect(moved(`ds_http_request_duration_seconds_count{operation="append"}`)).toBe(21);
      expect(moved(`ds_http_request_duration_seconds_bucket{le="+Inf",operation="append"}`)).toBe(21);
      expect(moved("ds_appends_total")).toBeGreaterThanOrEqual(21);
      const groups = moved("ds_append_groups_total");
      expect(groups).toBeGreaterThanOrEqual(1);
      expect(moved("ds_append_group_size_count")).toBe(groups);
      expect(moved("ds_append_group_size_sum")).toBe(moved("ds_appends_total"));
      expect(moved("ds_append_group_commit_seconds_count")).toBe(groups);
      expect(moved("ds_append_group_commit_seconds_sum")).toBeGreaterThan(0);
      expect(moved("ds_notifications_received_total")).toBeGreaterThanOrEqual(1);
      expect(moved(`ds_expiry_sweeps_total{result="ok"}`)).toBeGreaterThanOrEqual(1);
      expect(sample(after, "ds_db_up")).toBe(1);
      expect(sample(after, "ds_listener_up")).toBe(1);
      expect(sample(after, "ds_db_unavailable_errors_total")).toBe(0);
      expect(after.has("ds_db_pool_in_use")).toBe(true);
      expect(after.has("ds_db_pool_waiting")).toBe(true);
      expect(after.has("ds_append_cas_lost_total")).toBe(true);
      expect(after.has("ds_listener_reconnects_total")).toBe(true);
      expect(after.has("ds_backstop_wakeups_total")).toBe(true);
      expect(after.has("process_resident_memory_bytes")).toBe(true);
      // Every server runs the subscription deliverer: its counters are there, at 0 without subscriptions.
      for (const name of ["deliveries", "delivery_failures", "retries", "lease_expiries"]) {
        expect(after.get(`ds_subscription_${name}_total`)).toBe(0);
      }
      // Unbounded cardinality is what per-stream labels would bring.
      expect([...after.keys()].filter((k) => k.includes(name))).toEqual([]);
      // The readers left: the gauges come back down.
      await until("the SSE hub emptied", async () => sample(await scrape(), "ds_sse_hub_members") === 0);
    }, 60_000);

    // A change that sends no notification (written with SQL here) stands for a lost one.
    test.skipIf(!databaseUrl)("a reader woken by the backstop is counted", async () => {
      const name = `backstop-${runtime}-${Date.now()}`;
      expect((await fetch(`${base}/${name}`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
      const before = sample(await scrape(), "ds_backstop_wakeups_total");
      const longPoll = fetch(`${base}/${name}?offset=now&live=long-poll`);
      await until("the long-poll waiting", async () => sample(await scrape(), "ds_live_waiters") >= 1);
      const sql = postgres(databaseUrl!, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`UPDATE "${schema}".ds_streams SET closed = true WHERE path = $1`, [`/v1/stream/${name}`]);
      } finally {
        await sql.end();
      }
      const res = await longPoll;
      expect(res.status).toBe(204);
      expect(res.headers.get("stream-closed")).toBe("true");
      expect(sample(await scrape(), "ds_backstop_wakeups_total") - before).toBe(1);
    }, 30_000);

    // Requests held up by a table lock taken here keep their database operations in flight.
    test.skipIf(!databaseUrl)("pool gauges: operations in use up to the pool size, the rest waiting", async () => {
      const name = `pool-${runtime}-${Date.now()}`;
      expect((await fetch(`${base}/${name}`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
      const sql = postgres(databaseUrl!, { max: 1, onnotice: () => {} });
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = sql.begin(async (tx) => {
        await tx.unsafe(`LOCK TABLE "${schema}".ds_streams IN ACCESS EXCLUSIVE MODE`);
        locked();
        await released;
      });
      try {
        await isLocked;
        const heads = Array.from({ length: 5 }, () => fetch(`${base}/${name}`, { method: "HEAD" }));
        const m = await until("five operations in flight", async () => {
          const now = await scrape();
          return sample(now, "ds_db_pool_in_use") + sample(now, "ds_db_pool_waiting") >= 5 ? now : undefined;
        });
        expect(sample(m, "ds_db_pool_in_use")).toBe(2);
        expect(sample(m, "ds_db_pool_waiting")).toBeGreaterThanOrEqual(3);
        release();
        expect((await Promise.all(heads)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
        await until("the pool idle again", async () => sample(await scrape(), "ds_db_pool_in_use") === 0);
      } finally {
        release();
        await holder;
        await sql.end();
      }
    }, 30_000);

    test.skipIf(!hasPromtool)("promtool check metrics accepts the exposition", async () => {
      const text = await (await fetch(metricsUrl)).text();
      expect(text).toContain("ds_http_requests_total");
      const { status, output } = promtoolCheck(text);
      expect(output).toBe("");
      expect(status).toBe(0);
    });

    test("/metrics is served on METRICS_PORT only", async () => {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
      const other = await fetch(metricsUrl.replace("/metrics", "/healthz"));
      expect(other.status).toBe(404);
      const res = await fetch(metricsUrl);
      expect(res.headers.get("content-type")).toContain("text/plain");
    });

    test("X-Request-Id: a well-formed one is echoed, otherwise one is generated", async () => {
      const id = (res: Response) => res.headers.get("x-request-id") ?? "";
      const given = await fetch(`${server.url}/healthz`, { headers: { "X-Request-Id": "lb-7f3a:1" } });
      expect(id(given)).toBe("lb-7f3a:1");
      expect(id(await fetch(`${server.url}/healthz`))).toMatch(UUID);
      expect(id(await fetch(`${base}/nope?offset=-1`))).toMatch(UUID); // a 404 too
      expect(id(await fetch(`${server.url}/not-a-route`))).toMatch(UUID);
      for (const bad of ["two words", "x".repeat(129), 'a"b', "{json}"]) {
        expect(id(await fetch(`${server.url}/healthz`, { headers: { "X-Request-Id": bad } }))).toMatch(UUID);
      }
    });

    test("logs: one JSON object per line; an append and a 4xx carry their request id", async () => {
      const name = `logs-${runtime}-${Date.now()}`;
      await fetch(`${base}/${name}`, { method: "PUT", headers: { "Content-Type": "text/plain" } });
      const appendId = `append-${runtime}-1`;
      const append = await fetch(`${base}/${name}`, {
        method: "POST",
        headers: { "Content-Type": "text/plain", "X-Request-Id": appendId },
        body: "hello",
      });
      expect(append.status).toBe(204);
      const seqB = await fetch(`${base}/${name}`, { method: "POST", headers: { "Content-Type": "text/plain", "Stream-Seq": "b" }, body: "x" });
      await fetch(`${base}/${name}`, { method: "POST", headers: { "Content-Type": "text/plain", "Stream-Seq": "a" }, body: "y" });
      expect(seqB.status).toBe(204);
      const conflict = await fetch(`${base}/${name}`, { method: "POST", headers: { "Content-Type": "text/plain", "Stream-Seq": "a" }, body: "z" });
      expect(conflict.status).toBe(409);
      const conflictId = conflict.headers.get("x-request-id")!;
      expect(conflictId).toMatch(UUID);

      // Refused by the guard in front of the handlers: its reason reaches the access log too.
      const tooLong = await fetch(`${base}/${"x".repeat(1100)}?offset=-1`);
      expect(tooLong.status).toBe(414);
      const tooLongId = tooLong.headers.get("x-request-id")!;

      const records = await until("the access log lines", async () => {
        const parsed = logLines().map((l) => JSON.parse(l) as Record<string, unknown>);
        const a = parsed.find((r) => r.requestId === appendId);
        const c = parsed.find((r) => r.requestId === conflictId);
        const g = parsed.find((r) => r.requestId === tooLongId);
        return a && c && g ? { parsed, a, c, g } : undefined;
      });
      expect(records.g).toMatchObject({ msg: "request", status: 414 });
      expect(String(records.g.error)).toMatch(/longer than/);
      for (const r of records.parsed) {
        expect(typeof r.time).toBe("string");
        expect(typeof r.level).toBe("string");
        expect(typeof r.msg).toBe("string");
      }
      // Start-up logged the configuration, with the password of a database URL hidden.
      const starting = records.parsed.find((r) => r.msg === "starting") as { config: Record<string, unknown> } | undefined;
      expect(starting?.config).toMatchObject({ ACCESS_LOG: "true", METRICS_PORT: expect.any(Number) });
      if (databaseUrl) expect(String(starting?.config.DATABASE_URL)).not.toContain(new URL(databaseUrl).password || "\u0000");
      expect(records.parsed.some((r) => r.msg === "durable streams listening")).toBe(true);
      expect(records.a).toMatchObject({ level: "info", msg: "request", method: "POST", operation: "append", path: `/v1/stream/${name}`, status: 204 });
      expect(typeof records.a.durationMs).toBe("number");
      expect(records.a.error).toBeUndefined();
      expect(records.c).toMatchObject({ level: "info", msg: "request", method: "POST", operation: "append", path: `/v1/stream/${name}`, status: 409 });
      expect(String(records.c.error)).toMatch(/Stream-Seq/i);
      console.log(`${runtime} append log line: ${logLines().find((l) => l.includes(appendId))}`);
      console.log(`${runtime} 4xx log line: ${logLines().find((l) => l.includes(conflictId))}`);
    }, 30_000);
  });
}

describe("in process: /metrics on the main port, TRUST_REQUEST_ID=false", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(loadConfig({ PORT: "0", DATA_DIR: "memory://", TRUST_REQUEST_ID: "false" }), await fromMigratedDump());
  }, 60_000);
  afterAll(() => server.stop());

  test("without METRICS_PORT, GET /metrics on the main port", async () => {
    expect(server.metricsPort).toBeUndefined();
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("# TYPE ds_http_requests_total counter");
    expect(text).toContain("# TYPE ds_append_group_commit_seconds histogram");
    // Bun (this test's runtime): no heap-space census on a scrape, the heap totals stay.
    expect(text).toContain("# TYPE nodejs_heap_size_used_bytes gauge");
    expect(text).not.toContain("nodejs_heap_space_size");
  });

  test("an untrusted X-Request-Id is replaced", async () => {
    const res = await fetch(`${server.url}/healthz`, { headers: { "X-Request-Id": "client-chosen" } });
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  test("a bad log or metrics setting stops start-up with its name", () => {
    expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
    expect(() => loadConfig({ LOG_FORMAT: "xml" })).toThrow(/LOG_FORMAT/);
    expect(() => loadConfig({ METRICS_PORT: "70000" })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ ACCESS_LOG: "yes" })).toThrow(/ACCESS_LOG/);
  });
});

describe("LOG_FORMAT=pretty", () => {
  const ahead = spawnAhead({ quiet: true, env: { LOG_FORMAT: "pretty", ACCESS_LOG: "true" } });
  test("readable lines, with the request id of a request", async () => {
    const server = await ahead();
    try {
      const res = await fetch(`${server.url}/v1/stream/pretty`, { method: "PUT", headers: { "X-Request-Id": "pretty-1" } });
      expect(res.status).toBe(201);
      await until("the request line", async () => server.stdout().includes("pretty-1"));
      const out = server.stdout();
      expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: durable streams listening$/m);
      expect(out).toMatch(/INFO: request\n(\s+\w+: .*\n)*\s+requestId: "pretty-1"/);
      expect(out.split("\n").some((l) => l.startsWith("{"))).toBe(false);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
