// Instances whose pool goes through PgBouncer in transaction mode (issue 29.3), on Bun and
// Deno: a private PgBouncer (Debian's 1.18, deploy/pgbouncer.ini) on port 5447 in front of
// the shared Postgres, LISTEN_DATABASE_URL straight to Postgres, DATABASE_PREPARE=false.
// The official suite runs through it too (scripts/conformance-pgbouncer.ts, in .ci/run).
// Needs DATABASE_URL and pgbouncer; skipped with a warning otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dropSchema, uniqueSchema } from "../support/backends.ts";
import { type PgBouncer, pgBouncerUnavailable, startPgBouncer } from "../support/pgbouncer.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
const SKIP = !DATABASE_URL ? "DATABASE_URL is unset" : pgBouncerUnavailable();
if (SKIP) console.warn(`test/http/pgbouncer.test.ts: SKIPPED (${SKIP})`);
const PORT = 5447;

describe.skipIf(!!SKIP)("through PgBouncer in transaction mode", () => {
  const schema = uniqueSchema("pgb");
  let bouncer: PgBouncer;
  const servers: SpawnedServer[] = [];
  beforeAll(async () => {
    bouncer = await startPgBouncer({ port: PORT, upstream: DATABASE_URL, schema });
  }, 30_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await bouncer?.stop();
    await dropSchema(schema);
  }, 30_000);

  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: appends, catch-up reads and a long-poll woken by another instance's append`, async () => {
      // Two instances: the wake-up must travel by NOTIFY (the backstop is 5 s).
      const env = { LISTEN_DATABASE_URL: DATABASE_URL, DATABASE_PREPARE: "false", BACKSTOP_MS: "5000" };
      const [a, b] = await Promise.all([0, 1].map(() => spawnServer({ runtime, databaseUrl: bouncer.url, schema, env, quiet: true })));
      servers.push(a, b);
      const path = `/v1/stream/pgb-${runtime}`;
      expect((await fetch(`${a.url}${path}`, { method: "PUT", headers: { "Content-Type": "application/octet-stream" } })).status).toBe(201);
      // A large append and many small ones (shared chunk rows), read back exactly.
      const big = new Uint8Array(300_000).map((_, i) => i % 251);
      expect((await fetch(`${a.url}${path}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: big })).status).toBe(204);
      await Promise.all(Array.from({ length: 40 }, (_, i) =>
        fetch(`${b.url}${path}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: new Uint8Array(10).fill(i) }).then((r) => r.arrayBuffer())));
      const read = await fetch(`${b.url}${path}?offset=-1`);
      const got = new Uint8Array(await read.arrayBuffer());
      expect(read.status).toBe(200);
      expect(got.byteLength).toBe(300_400);
      expect(got.subarray(0, 300_000)).toEqual(big);
      const tail = read.headers.get("Stream-Next-Offset")!;
      const t0 = performance.now();
      const poll = fetch(`${a.url}${path}?offset=${tail}&live=long-poll`);
      await new Promise((r) => setTimeout(r, 200));
      expect((await fetch(`${b.url}${path}`, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: "wake" })).status).toBe(204);
      const woken = await poll;
      expect(woken.status).toBe(200);
      expect(await woken.text()).toBe("wake");
      expect(performance.now() - t0).toBeLessThan(3_000);
      for (const s of [a, b]) expect(s.output()).not.toContain("unexpected error");
    }, 60_000);
  }

  for (const runtime of ["bun", "deno"] as Runtime[]) test(`${runtime}: 64 clients appending and reading at once: every request answered, nothing lost`, async () => {
    // PgBouncer 1.18 releases a server connection at its first idle ReadyForQuery; a query
    // pipelined behind that one on the same connection got its answers after the release
    // ("got packet from server when not linked"), and its client waited forever. Before
    // the fix this stalled within a few hundred requests.
    const env = { LISTEN_DATABASE_URL: DATABASE_URL, DATABASE_PREPARE: "false", DATABASE_POOL_SIZE: "4" };
    const s = await spawnServer({ runtime, databaseUrl: bouncer.url, schema, env, quiet: true });
    servers.push(s);
    const paths = Array.from({ length: 40 }, (_, i) => `${s.url}/v1/stream/pgb-load-${runtime}-${i}`);
    await Promise.all(paths.map((p) => fetch(p, { method: "PUT", headers: { "Content-Type": "text/plain" } })));
    const acked = new Map<string, string[]>(paths.map((p) => [p, []]));
    const statuses = new Map<number, number>();
    let next = 0;
    const TOTAL = 4_000;
    const client = async (c: number) => {
      while (next < TOTAL) {
        const n = next++;
        const p = paths[(n * 7 + c) % paths.length];
        const append = n % 3 !== 2;
        const body = `${c}:${n};`;
        const res = await fetch(append ? p : `${p}?offset=-1`, {
          method: append ? "POST" : "GET",
          headers: { "Content-Type": "text/plain" },
          body: append ? body : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (append && res.status === 204) acked.get(p)!.push(body);
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, c) => client(c)));
    expect([...statuses.keys()].sort()).toEqual([200, 204]);
    for (const [p, bodies] of acked) {
      const text = await (await fetch(`${p}?offset=-1`)).text();
      for (const b of bodies) expect(text).toContain(b);
    }
    expect(bouncer.log()).not.toContain("when not linked");
    expect(s.output()).not.toContain("unexpected error");
  }, 90_000);

  test("an instance whose pooled connections do not see DATABASE_SCHEMA refuses to start", async () => {
    const plain = await startPgBouncer({ port: PORT - 1, upstream: DATABASE_URL });
    try {
      const err = await spawnServer({ databaseUrl: plain.url, schema, env: { LISTEN_DATABASE_URL: DATABASE_URL, DATABASE_PREPARE: "false" }, quiet: true })
        .then((s) => (servers.push(s), "started"), (e) => String(e));
      expect(err).toContain("not DATABASE_SCHEMA");
    } finally {
      await plain.stop();
    }
  }, 60_000);
});
