// Issue 26.2 and 26.3 through real server processes on Bun and Deno:
//   - a close-only request with another producer tuple than the closing one is 409 (5.2.1)
//   - compare-and-append (Stream-Expected-Offset): 409 with the tail, precedence, JSON, forks
//   - two writers racing through three instances (two Bun, one Deno, one Postgres schema)
//     behind a round-robin "load balancer": exactly one wins each round, nothing lost or doubled
// With DATABASE_URL the three instances share a schema; without it each runtime gets its own
// PGlite server and the race (which needs shared storage) is skipped with a warning.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dropSchema, uniqueSchema } from "../support/backends.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
if (!DATABASE_URL) console.warn("test/http/append-rules.test.ts: the cross-instance race is SKIPPED without DATABASE_URL");
const SCHEMA = uniqueSchema("appendrules");
const TIMEOUT_MS = 60_000;
// A PGlite server's first start (initdb in WASM) took 40-50 s on a loaded 2-core machine.
const START_TIMEOUT_MS = 180_000;
const at = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;

const servers: { runtime: Runtime; server: SpawnedServer }[] = [];

beforeAll(async () => {
  const runtimes: Runtime[] = DATABASE_URL ? ["bun", "bun", "deno"] : ["bun", "deno"];
  // One after another: started together, each would take as long as all of them.
  for (const runtime of runtimes) {
    const server = await spawnServer({ runtime, quiet: true, ...(DATABASE_URL ? { databaseUrl: DATABASE_URL, schema: SCHEMA } : {}) });
    servers.push({ runtime, server });
  }
}, START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.server.stop()));
  await dropSchema(SCHEMA);
}, TIMEOUT_MS);

const producer = (id: string, epoch: number, seq: number) => ({ "Producer-Id": id, "Producer-Epoch": String(epoch), "Producer-Seq": String(seq) });

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`on ${runtime}`, () => {
    let n = 0;
    const url = () => `${servers.find((s) => s.runtime === runtime)!.server.url}/v1/stream/ar-${runtime}-${Date.now().toString(36)}-${n++}`;
    const put = (u: string, headers: Record<string, string> = { "Content-Type": "text/plain" }, body?: string) =>
      fetch(u, { method: "PUT", headers, body });
    const post = (u: string, headers: Record<string, string>, body?: string) => fetch(u, { method: "POST", headers, body });
    const text = async (u: string) => (await fetch(`${u}?offset=-1`)).text();

    test("close-only on a closed stream: only the closing producer tuple is a duplicate", async () => {
      const u = url();
      await put(u, undefined, "ab");
      const closed = await post(u, { "Stream-Closed": "true", ...producer("a", 0, 0) });
      expect(closed.status).toBe(204);
      const dup = await post(u, { "Stream-Closed": "true", ...producer("a", 0, 0) });
      expect(dup.status).toBe(204);
      expect(dup.headers.get("stream-closed")).toBe("true");
      for (const other of [producer("b", 0, 0), producer("a", 0, 1), producer("a", 1, 0)]) {
        const res = await post(u, { "Stream-Closed": "true", ...other });
        expect(res.status).toBe(409);
        expect(res.headers.get("stream-closed")).toBe("true");
        expect(res.headers.get("stream-next-offset")).toBe(at(2));
      }
      // without producer headers a repeated close stays idempotent (5.3)
      expect((await post(u, { "Stream-Closed": "true" })).status).toBe(204);
      // a stream closed by a plain close: a producer's close-only is not its closing tuple
      const v = url();
      await put(v);
      await post(v, { "Stream-Closed": "true" });
      expect((await post(v, { "Stream-Closed": "true", ...producer("a", 0, 0) })).status).toBe(409);
    });

    test("Stream-Expected-Offset: appends at that tail, else 409 with the tail; malformed is 400", async () => {
      const u = url();
      await put(u, undefined, "abc");
      const ok = await post(u, { "Content-Type": "text/plain", "Stream-Expected-Offset": at(3) }, "de");
      expect(ok.status).toBe(204);
      expect(ok.headers.get("stream-next-offset")).toBe(at(5));
      const stale = await post(u, { "Content-Type": "text/plain", "Stream-Expected-Offset": at(3) }, "xx");
      expect(stale.status).toBe(409);
      expect(stale.headers.get("stream-next-offset")).toBe(at(5));
      expect(stale.headers.get("stream-closed")).toBeNull();
      for (const bad of ["-1", "now", "5", "garbage"]) {
        expect((await post(u, { "Content-Type": "text/plain", "Stream-Expected-Offset": bad }, "yy")).status).toBe(400);
      }
      expect(await text(u)).toBe("abcde");
      // append-and-close is conditional too; then a closed stream answers as closed
      expect((await post(u, { "Content-Type": "text/plain", "Stream-Closed": "true", "Stream-Expected-Offset": at(4) }, "z")).status).toBe(409);
      const closing = await post(u, { "Content-Type": "text/plain", "Stream-Closed": "true", "Stream-Expected-Offset": at(5) }, "z");
      expect(closing.status).toBe(204);
      expect(closing.headers.get("stream-closed")).toBe("true");
      const after = await post(u, { "Content-Type": "text/plain", "Stream-Expected-Offset": at(6) }, "w");
      expect(after.status).toBe(409);
      expect(after.headers.get("stream-closed")).toBe("true");
      expect(await text(u)).toBe("abcdez");
    });

    test("precedence: a producer's duplicate first, Stream-Seq still checked; a refused append consumes no seq", async () => {
      const u = url();
      await put(u);
      const first = await post(u, { "Content-Type": "text/plain", ...producer("p", 0, 0), "Stream-Expected-Offset": at(0) }, "one");
      expect(first.status).toBe(200);
      await post(u, { "Content-Type": "text/plain" }, "--");
      // the retry of the accepted append: a duplicate although the tail moved
      const retry = await post(u, { "Content-Type": "text/plain", ...producer("p", 0, 0), "Stream-Expected-Offset": at(0) }, "one");
      expect(retry.status).toBe(204);
      // refused on the offset: seq 1 is not consumed and can be sent again at the tail
      const refused = await post(u, { "Content-Type": "text/plain", ...producer("p", 0, 1), "Stream-Expected-Offset": at(3) }, "two");
      expect(refused.status).toBe(409);
      expect(refused.headers.get("stream-next-offset")).toBe(at(5));
      expect((await post(u, { "Content-Type": "text/plain", ...producer("p", 0, 1), "Stream-Expected-Offset": at(5) }, "two")).status).toBe(200);
      await post(u, { "Content-Type": "text/plain", "Stream-Seq": "b" }, "!");
      const seq = await post(u, { "Content-Type": "text/plain", "Stream-Seq": "a", "Stream-Expected-Offset": at(9) }, "?");
      expect(seq.status).toBe(409);
      expect(await text(u)).toBe("one--two!");
    });

    test("JSON: a multi-message array is one append, accepted or refused whole; a fork compares its own tail", async () => {
      const u = url();
      await put(u, { "Content-Type": "application/json" }, "[1,2]");
      const refused = await post(u, { "Content-Type": "application/json", "Stream-Expected-Offset": at(1) }, "[3,4,5]");
      expect(refused.status).toBe(409);
      expect(refused.headers.get("stream-next-offset")).toBe(at(2));
      const ok = await post(u, { "Content-Type": "application/json", "Stream-Expected-Offset": at(2) }, "[3,4,5]");
      expect(ok.headers.get("stream-next-offset")).toBe(at(5));
      expect(JSON.parse(await text(u))).toEqual([1, 2, 3, 4, 5]);
      const f = url();
      expect((await put(f, { "Stream-Forked-From": new URL(u).pathname, "Stream-Fork-Offset": at(3) })).status).toBe(201);
      expect((await post(f, { "Content-Type": "application/json", "Stream-Expected-Offset": at(5) }, "[9]")).status).toBe(409);
      expect((await post(f, { "Content-Type": "application/json", "Stream-Expected-Offset": at(3) }, "[9]")).status).toBe(204);
      expect(JSON.parse(await text(f))).toEqual([1, 2, 3, 9]);
    });

    test("CORS preflight allows Stream-Expected-Offset", async () => {
      const res = await fetch(url(), { method: "OPTIONS", headers: { Origin: "https://a.example", "Access-Control-Request-Method": "POST" } });
      expect(res.headers.get("access-control-allow-headers")).toContain("Stream-Expected-Offset");
    });
  });
}

describe("two writers racing through two Bun and one Deno instance", () => {
  test.skipIf(!DATABASE_URL)("each round exactly one wins; the stream holds every winner once, in order", async () => {
    const rounds = 60;
    let next = 0;
    // round-robin over the instances, like a load balancer: consecutive requests land on different processes
    const lb = () => servers[next++ % servers.length].server.url;
    const path = `/v1/stream/race-${Date.now().toString(36)}`;
    expect((await fetch(`${lb()}${path}`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
    const tails = [at(0), at(0)];
    const winners: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const res = await Promise.all(
        [0, 1].map((w) =>
          fetch(`${lb()}${path}`, {
            method: "POST",
            headers: { "Content-Type": "text/plain", "Stream-Expected-Offset": tails[w] },
            body: `<${round}.${w}>`,
          }),
        ),
      );
      const statuses = res.map((r) => r.status).sort();
      expect(statuses).toEqual([204, 409]);
      res.forEach((r, w) => (tails[w] = r.headers.get("stream-next-offset")!));
      expect(tails[0]).toBe(tails[1]);
      winners.push(`<${round}.${res.findIndex((r) => r.status === 204)}>`);
    }
    const body = await (await fetch(`${lb()}${path}?offset=-1`)).text();
    expect(body).toBe(winners.join(""));
    expect(tails[0]).toBe(at(body.length));
  }, TIMEOUT_MS);
});
