// The admin API through a real socket, on PGlite and (with DATABASE_URL) Postgres: keyset
// pages miss and repeat nothing while streams come and go, prefix filters are byte-exact
// (no LIKE wildcards), stream details, content pages, live reader counts and bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/settings.ts";
import { prefixUpperBound } from "../../src/store/admin/streams.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { databaseUrl, dropSchema, fromMigratedDump, uniqueSchema } from "../support/backends.ts";

const TIMEOUT_MS = 60_000;

test("prefixUpperBound is the next string in code point order", () => {
  expect(prefixUpperBound("a/")).toBe("a0");
  expect(prefixUpperBound("/v1/stream/")).toBe("/v1/stream0");
  expect(prefixUpperBound("x\u{10ffff}")).toBe("y");
  expect(prefixUpperBound("\u{10ffff}")).toBeNull();
  expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
  expect(prefixUpperBound("")).toBeNull();
});

const backends = [
  { name: "pglite", env: { DATA_DIR: "memory://" } as Record<string, string>, schema: undefined as string | undefined },
  ...(databaseUrl ? [{ name: "postgres", env: { DATABASE_URL: databaseUrl }, schema: uniqueSchema("admin") }] : []),
];

for (const backend of backends) {
  describe(`admin API on ${backend.name}`, () => {
    let server: RunningServer;
    let base: string;
    const put = (name: string, headers: Record<string, string> = {}, body?: BodyInit) =>
      fetch(`${base}/v1/stream/${name}`, { method: "PUT", headers: { ...("Stream-Forked-From" in headers ? {} : { "Content-Type": "text/plain" }), ...headers }, body });
    const del = (name: string) => fetch(`${base}/v1/stream/${name}`, { method: "DELETE" });
    const list = async (query: string) => {
      const res = await fetch(`${base}/v1/admin/streams?${query}`);
      expect(res.status).toBe(200);
      return (await res.json()) as { streams: { name: string }[]; next: string | null };
    };
    /** Every page of a listing, following `next`. */
    const walk = async (query: string, between?: () => Promise<void>) => {
      const names: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await list(`${query}${after === null ? "" : `&after=${encodeURIComponent(after)}`}`);
        names.push(...page.streams.map((s) => s.name));
        if (page.next === null) return names;
        after = page.next;
        await between?.();
      }
    };

    beforeAll(async () => {
      server = await startServer(
        loadConfig({ PORT: "0", ...backend.env, ...(backend.schema ? { DATABASE_SCHEMA: backend.schema } : {}), LONG_POLL_TIMEOUT_MS: "20000" }),
        backend.name === "pglite" ? await fromMigratedDump() : {},
      );
      base = server.url;
    }, TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      if (backend.schema) await dropSchema(backend.schema);
    }, TIMEOUT_MS);

    test("keyset pages miss and repeat no stream while others are created and deleted", async () => {
      const stable = Array.from({ length: 240 }, (_, i) => `page/${String(i).padStart(4, "0")}`);
      for (let i = 0; i < stable.length; i += 40) await Promise.all(stable.slice(i, i + 40).map((n) => put(n)));
      // Churn: streams whose names fall between the stable ones (before and after the
      // cursor) appear and vanish while the listing is walked.
      let stop = false;
      let churned = 0;
      const churn = (async () => {
        for (let round = 0; !stop; round++) {
          const names = Array.from({ length: 8 }, (_, k) => `page/${String((round * 37 + k * 29) % 240).padStart(4, "0")}-c${round}`);
          await Promise.all(names.map((n) => put(n)));
          await Promise.all(names.filter((_, k) => k % 2 === 0).map((n) => del(n)));
          churned += names.length;
        }
      })();
      const seen = await walk("prefix=page/&limit=7", () => new Promise((r) => setTimeout(r, 2)));
      stop = true;
      await churn;
      expect(churned).toBeGreaterThan(0);
      // The churn really ran during the walk: streams it kept show up between stable ones.
      expect(seen.some((n) => n.includes("-c"))).toBe(true);
      expect(new Set(seen).size).toBe(seen.length); // nothing repeated
      expect(seen.filter((n) => !n.includes("-c"))).toEqual(stable); // nothing stable missed, in order
      const sorted = [...seen].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
      expect(seen).toEqual(sorted); // byte order throughout
    }, TIMEOUT_MS);

    test("prefix filters by bytes: no LIKE wildcards, no neighbours", async () => {
      const names = ["pf/a", "pf/a/b", "pf/a/b/c", "pf/ab", "pf/a0", "pf/b", "pf/x_1", "pf/xy1", "pf/x%251", "pf/caf%C3%A9", "pfz"];
      for (const n of names) expect((await put(n)).status).toBe(201);
      const names_ = async (prefix: string) => (await walk(`prefix=${encodeURIComponent(prefix)}&limit=2`)).filter((n) => n.startsWith("pf"));
      expect(await names_("pf/a/")).toEqual(["pf/a/b", "pf/a/b/c"]);
      expect(await names_("pf/a")).toEqual(["pf/a", "pf/a/b", "pf/a/b/c", "pf/a0", "pf/ab"]);
      expect(await names_("pf/x_")).toEqual(["pf/x_1"]);
      expect(await names_("pf/x%")).toEqual(["pf/x%251"]);
      expect(await names_("pf/caf%C3")).toEqual(["pf/caf%C3%A9"]);
      expect(await names_("pf/nothing")).toEqual([]);
      expect((await names_("pf")).length).toBe(names.length);
      // prefix and after together
      expect((await list("prefix=pf/a&after=pf/a/b&limit=10")).streams.map((s) => s.name)).toEqual(["pf/a/b/c", "pf/a0", "pf/ab"]);
    }, TIMEOUT_MS);

    test("a stream's details: metadata, forks, soft delete, expiry", async () => {
      expect((await put("d/src", { "Content-Type": "application/json", "Stream-TTL": "3600" }, '[{"a":1},{"b":22}]')).status).toBe(201);
      expect((await put("d/fork", { "Stream-Forked-From": "/v1/stream/d/src", "Stream-Fork-Offset": "0000000000000000_0000000000000001" })).status).toBe(201);
      const res = await fetch(`${base}/v1/admin/streams/d/src`);
      expect(res.status).toBe(200);
      const s = await res.json();
      expect(s).toMatchObject({
        name: "d/src", path: "/v1/stream/d/src", contentType: "application/json", kind: "json",
        tailOffset: "0000000000000000_0000000000000002", messageCount: 2, storedBytes: 15, ttlSeconds: 3600,
        expiresAt: null, closed: false, forkedFrom: null, forkCount: 1, deleted: false, liveReaders: { sse: 0, longPoll: 0 },
      });
      expect(s.forks.map((f: { name: string }) => f.name)).toEqual(["d/fork"]);
      expect(s.forks[0]).toMatchObject({ forkedFrom: { name: "d/src", offset: "0000000000000000_0000000000000001" }, storedBytes: 0, messageCount: 1 });
      // Deleting a stream that a fork reads keeps it, marked deleted (the protocol says 410).
      expect((await del("d/src")).status).toBe(204);
      expect((await fetch(`${base}/v1/stream/d/src?offset=-1`)).status).toBe(410);
      const gone = await (await fetch(`${base}/v1/admin/streams/d/src`)).json();
      expect(gone.deleted).toBe(true);
      expect((await list("prefix=d/")).streams.map((x) => [x.name, (x as unknown as { deleted: boolean }).deleted])).toEqual([["d/fork", false], ["d/src", true]]);
      // Expired streams are absent, as everywhere else.
      expect((await put("d/old", { "Stream-Expires-At": new Date(Date.now() + 1500).toISOString() })).status).toBe(201);
      expect((await list("prefix=d/old")).streams.length).toBe(1);
      await new Promise((r) => setTimeout(r, 1700));
      expect((await list("prefix=d/old")).streams.length).toBe(0);
      expect((await fetch(`${base}/v1/admin/streams/d/old`)).status).toBe(404);
    }, TIMEOUT_MS);

    test("live readers of a stream on this instance are counted", async () => {
      expect((await put("live/one", { "Content-Type": "application/json" })).status).toBe(201);
      const ac = new AbortController();
      const poll = fetch(`${base}/v1/stream/live/one?offset=now&live=long-poll`, { signal: ac.signal }).catch(() => undefined);
      const sse = await fetch(`${base}/v1/stream/live/one?offset=now&live=sse`, { signal: ac.signal });
      const reader = sse.body!.getReader();
      await reader.read(); // the first control event: the reader has caught up and joined its hub
      let counts: { sse: number; longPoll: number } | undefined;
      for (let i = 0; i < 100; i++) {
        counts = (await (await fetch(`${base}/v1/admin/streams/live/one`)).json()).liveReaders;
        if (counts!.sse === 1 && counts!.longPoll === 1) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(counts).toEqual({ sse: 1, longPoll: 1 });
      ac.abort();
      await poll;
      await reader.cancel().catch(() => {});
    }, TIMEOUT_MS);

    test("content pages: per-message offsets, byte pages, fork data stitched", async () => {
      const msgs = Array.from({ length: 30 }, (_, n) => ({ n }));
      expect((await put("c/json", { "Content-Type": "application/json" }, JSON.stringify(msgs))).status).toBe(201);
      const page = await (await fetch(`${base}/v1/admin/content/c/json?offset=0000000000000000_0000000000000010&limit=5`)).json();
      expect(page).toMatchObject({ kind: "json", position: 10, nextPosition: 15, tailPosition: 30, nextOffset: "0000000000000000_0000000000000015" });
      expect(page.items.map((i: { position: number; text: string }) => [i.position, JSON.parse(i.text).n])).toEqual([[10, 10], [11, 11], [12, 12], [13, 13], [14, 14]]);
      expect((await (await fetch(`${base}/v1/admin/content/c/json?offset=28`)).json()).items.length).toBe(2);

      const bytes = new Uint8Array(100).map((_, i) => i);
      expect((await put("c/bin", { "Content-Type": "application/octet-stream" }, bytes.slice(0, 60))).status).toBe(201);
      await fetch(`${base}/v1/stream/c/bin`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: bytes.slice(60) });
      expect((await put("c/binfork", { "Stream-Forked-From": "/v1/stream/c/bin", "Stream-Fork-Offset": "0000000000000000_0000000000000090" })).status).toBe(201);
      await fetch(`${base}/v1/stream/c/binfork`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: new Uint8Array([200, 201]) });
      const bin = await (await fetch(`${base}/v1/admin/content/c/binfork?offset=50&limit=45`)).json();
      expect(bin).toMatchObject({ kind: "binary", position: 50, nextPosition: 92, tailPosition: 92 });
      const got = Buffer.concat(bin.items.map((i: { base64: string }) => Buffer.from(i.base64, "base64")));
      expect([...got]).toEqual([...bytes.slice(50, 90), 200, 201]);
      expect(bin.items.map((i: { position: number }) => i.position)).toEqual([50, 60, 90]);
    }, TIMEOUT_MS);

    test("bad input gets a clear 4xx", async () => {
      const cases: [string, number, string][] = [
        ["/v1/admin/streams?limit=0", 400, "limit must be an integer from 1 to 1000"],
        ["/v1/admin/streams?limit=abc", 400, "limit must be an integer from 1 to 1000"],
        ["/v1/admin/streams?limit=1001", 400, "limit must be an integer from 1 to 1000"],
        ["/v1/admin/streams?prefix=a&prefix=b", 400, "prefix may be given once"],
        [`/v1/admin/streams?prefix=${"x".repeat(2000)}`, 400, "prefix is too long"],
        ["/v1/admin/streams?prefix=%00", 400, "prefix must not contain NUL characters"],
        ["/v1/admin/streams?after=a%00b", 400, "after must not contain NUL characters"],
        ["/v1/admin/streams/none/such", 404, "stream not found"],
        ["/v1/admin/content/c/json?offset=zzz", 400, "offset must be -1, a position, or an offset returned by this server"],
        ["/v1/admin/content/c/json?offset=31", 400, "offset is beyond the end of the stream"],
        ["/v1/admin/content/c/json?limit=-1", 400, "limit must be an integer from 1 to 1000"],
        ["/v1/admin/content/none", 404, "stream not found"],
      ];
      for (const [path, status, message] of cases) {
        const res = await fetch(`${base}${path}`);
        expect([path, res.status, await res.text()]).toEqual([path, status, message]);
      }
      // The page: / redirects to /ui/, which serves the page; nothing outside ui/ is reachable.
      const root = await fetch(`${base}/`, { redirect: "manual" });
      expect([root.status, root.headers.get("location")]).toEqual([302, "/ui/"]);
      const html = await fetch(`${base}/ui/`);
      expect(html.status).toBe(200);
      expect(html.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(await html.text()).toContain('<script type="module" src="js/app.js">');
      expect((await fetch(`${base}/ui/js/app.js`)).headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      for (const p of ["/ui/../src/main.ts", "/ui/%2e%2e/package.json", "/ui/nope.js"]) expect((await fetch(`${base}${p}`)).status).toBe(404);
    }, TIMEOUT_MS);
  });
}
