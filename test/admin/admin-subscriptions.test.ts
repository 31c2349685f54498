// The admin API's subscription views through a real socket, on PGlite and (with
// DATABASE_URL) Postgres, with subscriptions made through the protocol's control API: the
// fields of webhook and pull-wake subscriptions, wake / lease / delivery state, links with
// acked and tail offsets before and after an ack, keyset pages that miss and repeat nothing
// while subscriptions come and go, bounded link lists, tombstones, and bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/settings.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { databaseUrl, dropSchema, fromMigratedDump, uniqueSchema } from "../support/backends.ts";

const TIMEOUT_MS = 60_000;
const offset = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(50);
  }
}

const backends = [
  { name: "pglite", env: { DATA_DIR: "memory://" } as Record<string, string>, schema: undefined as string | undefined },
  ...(databaseUrl ? [{ name: "postgres", env: { DATABASE_URL: databaseUrl }, schema: uniqueSchema("adminsubs") }] : []),
];

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

for (const backend of backends) {
  describe(`admin subscriptions API on ${backend.name}`, () => {
    let server: RunningServer;
    let base: string;
    const sub = (id: string, rest = "") => `${base}/v1/stream/__ds/subscriptions/${encodeURIComponent(id)}${rest}`;
    const send = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
      fetch(url, { method, headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const stream = (name: string, body?: string, method = "PUT") =>
      fetch(`${base}/v1/stream/${name}`, { method, headers: { "content-type": "application/json" }, body });
    const admin = async (path: string) => {
      const res = await fetch(`${base}/v1/admin/subscriptions${path}`);
      expect(res.status).toBe(200);
      return (await res.json()) as Json;
    };
    const one = async (id: string, query = "") => admin(`/${encodeURIComponent(id)}${query}`);
    const walk = async (query: string, between?: () => Promise<void>) => {
      const ids: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await admin(`?${query}${after === null ? "" : `&after=${encodeURIComponent(after)}`}`);
        ids.push(...page.subscriptions.map((s: Json) => s.id));
        if (page.next === null) return ids;
        after = page.next;
        await between?.();
      }
    };

    beforeAll(async () => {
      server = await startServer(
        loadConfig({
          PORT: "0", ...backend.env, ...(backend.schema ? { DATABASE_SCHEMA: backend.schema } : {}),
          SUBSCRIPTION_TICK_MS: "100", SUBSCRIPTION_BACKSTOP_MS: "500", WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
        }),
        backend.name === "pglite" ? await fromMigratedDump() : {},
      );
      base = server.url;
    }, TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      if (backend.schema) await dropSchema(backend.schema);
    }, TIMEOUT_MS);

    test("pull-wake: fields, links with acked and tail, holder and lease while claimed, acked after an ack", async () => {
      expect((await stream("wake/adm", "[]")).status).toBe(201);
      const put = await send("PUT", sub("adm-pull"), {
        type: "pull-wake", streams: ["adm/a", "adm/later"], wake_stream: "wake/adm", lease_ttl_ms: 30_000, description: "inspector test",
      });
      expect(put.status).toBe(201);
      // Created after the subscription, so all of its data is pending.
      expect((await stream("adm/a", '[{"n":1},{"n":2}]')).status).toBe(201);

      const s = await one("adm-pull");
      expect(s).toMatchObject({
        id: "adm-pull", type: "pull-wake", pattern: null, webhookUrl: null, wakeStream: "wake/adm", leaseTtlMs: 30_000,
        description: "inspector test", status: "active", linkCount: 2, explicitCount: 2, linksBehind: 1, linksNext: null,
      });
      expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false);
      expect(s.links).toEqual([
        { name: "adm/a", path: "/v1/stream/adm/a", linkType: "explicit", ackedOffset: offset(0), ackedPosition: 0, tailOffset: offset(2), tailPosition: 2, behind: 2 },
        // A link to a stream that does not exist yet has no tail.
        { name: "adm/later", path: "/v1/stream/adm/later", linkType: "explicit", ackedOffset: offset(0), ackedPosition: 0, tailOffset: null, tailPosition: null, behind: null },
      ]);

      // Pending work makes a wake; a worker claims it: generation, wake id, holder and lease show.
      const claim = await until(async () => {
        const r = await send("POST", sub("adm-pull", "/claim"), { worker: "worker-1" });
        return r.status === 200 ? ((await r.json()) as Json) : undefined;
      });
      const held = await one("adm-pull");
      expect(held).toMatchObject({ generation: claim.generation, wakeId: claim.wake_id, holder: "worker-1" });
      const lease = Date.parse(held.leaseDeadline);
      expect(lease).toBeGreaterThan(Date.now() + 20_000);
      expect(lease).toBeLessThan(Date.now() + 40_000);
      expect(held.leaseDeadline).toBe(new Date(lease).toISOString());
      // The listing shows the same.
      const listed = (await admin("?prefix=adm-pull")).subscriptions;
      expect(listed.map((x: Json) => x.id)).toEqual(["adm-pull"]);
      expect(listed[0]).toMatchObject({ holder: "worker-1", wakeId: claim.wake_id, linkCount: 2 });
      expect(listed[0].links[0]).toMatchObject({ name: "adm/a", ackedOffset: offset(0), tailOffset: offset(2) });

      // Ack one message (heartbeat), then the rest with done: acked moves, the holder leaves.
      const auth = { authorization: `Bearer ${claim.token}` };
      const w = { wake_id: claim.wake_id, generation: claim.generation };
      expect((await send("POST", sub("adm-pull", "/ack"), { ...w, acks: [{ stream: "adm/a", offset: offset(1) }] }, auth)).status).toBe(200);
      expect((await one("adm-pull")).links[0]).toMatchObject({ ackedOffset: offset(1), tailOffset: offset(2), behind: 1 });
      expect((await send("POST", sub("adm-pull", "/ack"), { ...w, acks: [{ stream: "adm/a", offset: offset(2) }], done: true }, auth)).status).toBe(200);
      const done = await one("adm-pull");
      expect(done).toMatchObject({ holder: null, wakeId: null, leaseDeadline: null, linksBehind: 0 });
      expect(done.links[0]).toMatchObject({ ackedOffset: offset(2), tailOffset: offset(2), behind: 0 });

      // The stream appears later: its tail shows, and the link is behind.
      expect((await stream("adm/later", '[{"x":1}]')).status).toBe(201);
      expect((await one("adm-pull")).links[1]).toMatchObject({ tailOffset: offset(1), behind: 1 });
    }, TIMEOUT_MS);

    test("webhook: URL, glob pattern links, failed delivery attempts and the next attempt", async () => {
      const put = await send("PUT", sub("adm-hook"), { type: "webhook", pattern: "hooked/*", webhook: { url: "http://127.0.0.1:9/nobody" } });
      expect(put.status).toBe(201);
      expect((await stream("hooked/x", '[{"a":1}]')).status).toBe(201);
      // Nothing listens on port 9: delivery fails and is scheduled again with backoff.
      const s = await until(async () => {
        const v = await one("adm-hook");
        return v.delivery.attempt >= 1 ? v : undefined;
      });
      expect(s).toMatchObject({ type: "webhook", pattern: "hooked/*", webhookUrl: "http://127.0.0.1:9/nobody", wakeStream: null, linkCount: 1, explicitCount: 0 });
      expect(s.generation).toBeGreaterThanOrEqual(1);
      expect(s.wakeId).toMatch(/^w_/);
      expect(s.holder).toBeNull();
      expect(Number.isNaN(Date.parse(s.delivery.nextAttemptAt))).toBe(false);
      expect(s.links).toEqual([
        { name: "hooked/x", path: "/v1/stream/hooked/x", linkType: "glob", ackedOffset: offset(0), ackedPosition: 0, tailOffset: offset(1), tailPosition: 1, behind: 1 },
      ]);
    }, TIMEOUT_MS);

    test("keyset pages miss and repeat no subscription while others are created and deleted; prefix is literal", async () => {
      const ids = Array.from({ length: 30 }, (_, i) => `pg-${String(i).padStart(3, "0")}`);
      for (const id of ids) expect((await send("PUT", sub(id), { type: "pull-wake", streams: [`pg/${id}`], wake_stream: "wake/adm" })).status).toBe(201);
      let round = 0;
      const seen = await walk("prefix=pg-&limit=4", async () => {
        // Between pages: one subscription appears between the stable ones, another goes.
        const id = `pg-${String((round * 7) % 30).padStart(3, "0")}-c${round}`;
        expect((await send("PUT", sub(id), { type: "pull-wake", streams: ["pg/churn"], wake_stream: "wake/adm" })).status).toBe(201);
        if (round % 2 === 1) expect((await send("DELETE", sub(id))).status).toBe(204);
        round++;
      });
      expect(round).toBeGreaterThan(3);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.filter((id) => !id.includes("-c"))).toEqual(ids);
      expect(seen).toEqual([...seen].sort());
      // "_" and "%" are themselves, not wildcards.
      expect((await send("PUT", sub("pg_x"), { type: "pull-wake", streams: ["pg/x"], wake_stream: "wake/adm" })).status).toBe(201);
      expect(await walk("prefix=pg_&limit=3")).toEqual(["pg_x"]);
      expect(await walk("prefix=pg%25")).toEqual([]);
      // A deleted (tombstoned) subscription is neither listed nor shown.
      expect((await send("DELETE", sub("pg_x"))).status).toBe(204);
      expect(await walk("prefix=pg_")).toEqual([]);
      expect((await fetch(`${base}/v1/admin/subscriptions/pg_x`)).status).toBe(404);
    }, TIMEOUT_MS);

    test("links are bounded in the listing and paged in the detail view", async () => {
      const names = Array.from({ length: 150 }, (_, i) => `many/${String(i).padStart(3, "0")}`);
      expect((await send("PUT", sub("adm-many"), { type: "pull-wake", streams: names, wake_stream: "wake/adm" })).status).toBe(201);
      // Created after the subscription: its message is pending.
      expect((await stream("many/007", '[{"a":1}]')).status).toBe(201);
      const listed = (await admin("?prefix=adm-many")).subscriptions[0];
      expect(listed.linkCount).toBe(150);
      expect(listed.links.length).toBe(100);
      expect(listed.links.map((l: Json) => l.name)).toEqual(names.slice(0, 100));
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page: Json = await one("adm-many", `?limit=60${after === null ? "" : `&after=${encodeURIComponent(after)}`}`);
        expect(page.links.length).toBeLessThanOrEqual(60);
        seen.push(...page.links.map((l: Json) => l.name));
        if (page.linksNext === null) break;
        after = page.linksNext;
      }
      expect(seen).toEqual(names);
      const first = await one("adm-many", "?limit=10");
      expect(first.linksBehind).toBe(1);
      expect(first.links.find((l: Json) => l.name === "many/007")).toMatchObject({ tailOffset: offset(1), behind: 1 });
      expect(first.links.find((l: Json) => l.name === "many/008")).toMatchObject({ tailOffset: null, behind: null });
    }, TIMEOUT_MS);

    test("a subscription on 10,000 streams lists 100 links and a count", async () => {
      const names = Array.from({ length: 10_000 }, (_, i) => `wide/${String(i).padStart(5, "0")}`);
      expect((await send("PUT", sub("adm-wide"), { type: "pull-wake", streams: names, wake_stream: "wake/adm" })).status).toBe(201);
      let started = performance.now();
      const listed = (await admin("?prefix=adm-wide")).subscriptions[0];
      const listMs = performance.now() - started;
      expect(listed.linkCount).toBe(10_000);
      expect(listed.links.map((l: Json) => l.name)).toEqual(names.slice(0, 100));
      started = performance.now();
      const page = await one("adm-wide", `?after=${names[4999]}&limit=50`);
      const pageMs = performance.now() - started;
      expect(page.links.map((l: Json) => l.name)).toEqual(names.slice(5000, 5050));
      expect(page.linksNext).toBe(names[5049]);
      console.log(`${backend.name}: listing a subscription on 10,000 streams ${listMs.toFixed(1)} ms, a page of its links ${pageMs.toFixed(1)} ms`);
    }, TIMEOUT_MS);

    test("bad input gets a 4xx, never a 500", async () => {
      const cases: [string, number][] = [
        ["?limit=0", 400], ["?limit=501", 400], ["?limit=abc", 400], ["?limit=1&limit=2", 400], ["?prefix=a%00", 400],
        [`?after=${"x".repeat(300)}`, 400], ["?after=%01", 400],
        ["/%E0%A4%A", 400], [`/${"y".repeat(300)}`, 400], ["/a%00b", 400], ["/nope", 404],
        ["/adm-pull?limit=0", 400], ["/adm-pull?limit=1001", 400], ["/adm-pull?after=a%00", 400], [`/adm-pull?after=${"z".repeat(1100)}`, 400],
      ];
      for (const [path, status] of cases) {
        const res = await fetch(`${base}/v1/admin/subscriptions${path}`);
        expect([path, res.status]).toEqual([path, status]);
      }
      // A subscription id with a slash and spaces is one path segment, URL-encoded.
      expect((await send("PUT", sub("team a/worker"), { type: "pull-wake", streams: ["odd/x"], wake_stream: "wake/adm" })).status).toBe(201);
      expect((await one("team a/worker")).id).toBe("team a/worker");
    }, TIMEOUT_MS);
  });
}
