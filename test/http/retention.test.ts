// Retention over HTTP (issue 28) on Bun and Deno: the PUT headers, Stream-Earliest-Offset,
// 410 Gone below it on catch-up, long-poll and SSE, -1 from the earliest retained data;
// and (with DATABASE_URL) two instances passing over the same streams, one restarted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { databaseUrl, uniqueSchema, dropSchema } from "../support/backends.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const offset = (p: number) => `0000000000000000_${String(p).padStart(16, "0")}`;

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > deadline) return v;
    await Bun.sleep(50);
  }
}

const earliestOf = async (url: string) => (await fetch(url, { method: "HEAD" })).headers.get("stream-earliest-offset");

async function fill(url: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "text/plain" }, body: String(i).repeat(100) });
    expect(r.status).toBe(204);
  }
}

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`retention over HTTP on ${runtime}`, () => {
    let server: SpawnedServer;
    const ahead = spawnAhead({ runtime, quiet: true, env: { RETENTION_INTERVAL_MS: "50", LONG_POLL_TIMEOUT_MS: "500" } });
    beforeAll(async () => {
      server = await ahead();
    });
    afterAll(async () => {
      await server?.stop();
    });

    test("PUT validates the headers; a re-create compares them; HEAD shows the earliest offset", async () => {
      const url = `${server.url}/v1/stream/headers-${runtime}`;
      for (const [name, value] of [["Stream-Retention-Max-Age", "0"], ["Stream-Retention-Max-Bytes", "-5"], ["Stream-Retention-Max-Age", "1.5"], ["Stream-Compaction", "all"]]) {
        const bad = await fetch(url, { method: "PUT", headers: { "Content-Type": "text/plain", [name]: value } });
        expect(`${name}: ${bad.status}`).toBe(`${name}: 400`);
      }
      const json = await fetch(`${url}-bin`, { method: "PUT", headers: { "Content-Type": "text/plain", "Stream-Compaction": "state" } });
      expect(json.status).toBe(400);
      const h = { "Content-Type": "text/plain", "Stream-Retention-Max-Age": "3600", "Stream-Retention-Max-Bytes": "1000" };
      expect((await fetch(url, { method: "PUT", headers: h })).status).toBe(201);
      expect((await fetch(url, { method: "PUT", headers: h })).status).toBe(200);
      expect((await fetch(url, { method: "PUT", headers: { ...h, "Stream-Retention-Max-Bytes": "999" } })).status).toBe(409);
      const head = await fetch(url, { method: "HEAD" });
      expect(head.headers.get("stream-earliest-offset")).toBe(offset(0));
      expect(head.headers.get("stream-retention-max-age")).toBe("3600");
      // A stream under no policy shows no earliest offset.
      const plain = `${server.url}/v1/stream/plain-${runtime}`;
      await fetch(plain, { method: "PUT", headers: { "Content-Type": "text/plain" } });
      expect((await fetch(plain, { method: "HEAD" })).headers.get("stream-earliest-offset")).toBeNull();
    });

    test("below the earliest offset: 410 on catch-up, long-poll and SSE; -1 starts at it", async () => {
      const url = `${server.url}/v1/stream/cut-${runtime}`;
      await fetch(url, { method: "PUT", headers: { "Content-Type": "text/plain", "Stream-Retention-Max-Bytes": "200" } });
      // A live reader at the tail, before the data arrives and is cut.
      await fill(url, 5);
      expect(await until(() => earliestOf(url), (e) => e === offset(300))).toBe(offset(300));
      for (const q of [`offset=${offset(0)}`, `offset=${offset(299)}&live=long-poll`, `offset=${offset(100)}&live=sse`]) {
        const r = await fetch(`${url}?${q}`);
        expect(`${q}: ${r.status}`).toBe(`${q}: 410`);
        expect(r.headers.get("stream-earliest-offset")).toBe(offset(300));
        await r.body?.cancel();
      }
      const fromStart = await fetch(`${url}?offset=-1`);
      expect(fromStart.status).toBe(200);
      expect(await fromStart.text()).toBe("3".repeat(100) + "4".repeat(100));
      expect(fromStart.headers.get("stream-earliest-offset")).toBe(offset(300));
      expect(fromStart.headers.get("stream-next-offset")).toBe(offset(500));
      // A reader that kept up, then fell behind the cut, learns it on its next request.
      const next = await fetch(`${url}?offset=${offset(300)}`);
      expect(next.status).toBe(200);
      await next.text();
      await fill(url, 3);
      await until(() => earliestOf(url), (e) => e === offset(600));
      const behind = await fetch(`${url}?offset=${offset(500)}&live=long-poll`);
      expect(behind.status).toBe(410);
      expect(behind.headers.get("stream-earliest-offset")).toBe(offset(600));
    });

    test("a live read from -1 starts at the earliest offset even when the live cache predates the pass", async () => {
      const url = `${server.url}/v1/stream/live-start-${runtime}`;
      await fetch(url, { method: "PUT", headers: { "Content-Type": "text/plain", "Stream-Retention-Max-Bytes": "100" } });
      await fill(url, 1);
      // A long-poll at the tail puts the stream in the live-read cache.
      const waiting = fetch(`${url}?offset=${offset(100)}&live=long-poll`);
      await Bun.sleep(100);
      await fill(url, 2);
      expect((await waiting).status).toBe(200);
      await until(() => earliestOf(url), (e) => e === offset(200));
      for (const live of ["long-poll", "sse"]) {
        const ctl = new AbortController();
        const r = await fetch(`${url}?offset=-1&live=${live}`, { signal: ctl.signal });
        expect(`${live}: ${r.status}`).toBe(`${live}: 200`);
        const text = new TextDecoder().decode((await r.body!.getReader().read()).value);
        // Stored: "0" x 100, "0" x 100, "1" x 100; the size limit keeps the last append.
        expect(text).toContain("1".repeat(100));
        expect(text).not.toContain("0".repeat(100));
        ctl.abort();
      }
    });
  });
}

if (databaseUrl) {
  describe("retention across two instances (Postgres)", () => {
    const schema = uniqueSchema("ret");
    const servers: SpawnedServer[] = [];
    const start = (runtime: Runtime) =>
      spawnServer({ runtime, databaseUrl, schema, quiet: true, env: { RETENTION_INTERVAL_MS: "50" } });
    beforeAll(async () => {
      servers.push(await start("bun"));
      servers.push(await start("deno"));
    });
    afterAll(async () => {
      for (const s of servers) await s.stop();
      await dropSchema(schema);
    });

    test("concurrent passes remove each row once; a restarted instance carries on", async () => {
      const removed = async () => {
        let total = 0;
        for (const s of servers) {
          const text = await (await fetch(`${s.url}/metrics`)).text();
          const m = /ds_retention_rows_removed_total\{reason="retention"\} (\d+)/.exec(text);
          total += m ? Number(m[1]) : 0;
        }
        return total;
      };
      const urls = Array.from({ length: 8 }, (_, i) => `${servers[i % 2].url}/v1/stream/two-${i}`);
      for (const u of urls) {
        await fetch(u, { method: "PUT", headers: { "Content-Type": "text/plain", "Stream-Retention-Max-Bytes": "100" } });
        await fill(u, 6);
      }
      for (const u of urls) expect(await until(() => earliestOf(u), (e) => e === offset(500))).toBe(offset(500));
      // The earliest offset moves first and the rows go after it, counted as they go: wait for
      // the count to reach 8 x 5, then see that no second pass removed any row again.
      expect(await until(removed, (n) => n >= 8 * 5)).toBe(8 * 5);
      await Bun.sleep(200);
      expect(await removed()).toBe(8 * 5);
      // One instance dies; the other, and the restarted one, go on with new data.
      await servers[0].stop("SIGKILL");
      servers[0] = await start("bun");
      for (const u of urls.map((u) => u.replace(/^http:\/\/[^/]+/, servers[1].url))) await fill(u, 2);
      for (const u of urls.map((u) => u.replace(/^http:\/\/[^/]+/, servers[0].url))) {
        expect(await until(() => earliestOf(u), (e) => e === offset(700))).toBe(offset(700));
      }
    });
  });
}
