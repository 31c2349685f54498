// Catch-up reads from a hot standby (issue 29.1, DATABASE_READ_URLS), on private clusters
// this test creates and always drops (ports 5441-5445): a primary and an asynchronous hot
// standby made with pg_basebackup -R. On Bun and Deno, the guarantee: a read never returns
// less than the primary has (no Stream-Up-To-Date behind the tail, no 404 for a stream that
// exists, no read going backwards), also while the standby's replay is paused (it lags
// without bound) and while it is stopped; and reads do go to the standby once it has the data.
// Skipped with a warning only when pg_createcluster cannot run here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPgCluster, type PgCluster, pgClusterUnavailable } from "../support/pg-cluster.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { parseReadUrls } from "../../src/store/streams/standby-reads.ts";

const SKIP = pgClusterUnavailable();
if (SKIP) console.warn(`test/reliability/standby-reads.test.ts: SKIPPED (${SKIP})`);
const PORTS = [5441, 5442, 5443, 5444, 5445];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let primary: PgCluster | undefined;
let standby: PgCluster | undefined;
const servers: SpawnedServer[] = [];

beforeAll(async () => {
  if (SKIP) return;
  primary = await createPgCluster("dsstandby", { ports: PORTS });
  standby = await createPgCluster("dsstandby", { ports: PORTS, standbyOf: primary }).catch((e) => {
    primary?.drop();
    throw e;
  });
}, 120_000);

afterAll(async () => {
  try {
    await Promise.all(servers.map((s) => s.stop("SIGKILL").catch(() => {})));
  } finally {
    standby?.drop();
    primary?.drop();
  }
}, 30_000);

/** Blocks read in the `ds` database on the standby (tables' scan counters stay 0 on a standby). */
async function standbyChunkScans(_schema: string): Promise<number> {
  const r = await standby!.psql("SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = 'ds'");
  return Number(r.output.trim() || 0);
}

async function caughtUp(): Promise<void> {
  const lsn = (await primary!.psql("SELECT pg_current_wal_lsn()")).output.trim();
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(50)) {
    const r = await standby!.psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`);
    if (r.output.trim() === "t") return;
  }
  throw new Error("the standby did not catch up");
}

describe("DATABASE_READ_URLS", () => {
  test("splits on commas before a scheme only: a URL may name several hosts", () => {
    expect(parseReadUrls(undefined)).toEqual([]);
    expect(parseReadUrls("postgres://a@s1:5432/db, postgresql://a@s2:5432,s3:5432/db?sslmode=require"))
      .toEqual(["postgres://a@s1:5432/db", "postgresql://a@s2:5432,s3:5432/db?sslmode=require"]);
  });
});

const piece = (i: number) => new Uint8Array(1000).fill(i % 251);
const expected = (n: number, from = 0) => Buffer.concat(Array.from({ length: n - from }, (_, i) => piece(from + i)));

describe.skipIf(!!SKIP)("catch-up reads from a hot standby", () => {
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: reads go to the standby when it has the data, never return less than the primary has`, async () => {
      const schema = `standby_${runtime}_${process.pid}`;
      const s = await spawnServer({ runtime, databaseUrl: primary!.url, schema, env: { DATABASE_READ_URLS: standby!.url }, quiet: true });
      servers.push(s);
      const url = `${s.url}/v1/stream/sr`;
      const append = async (i: number) => {
        const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: piece(i) });
        expect(r.status).toBe(204);
        return r.headers.get("Stream-Next-Offset")!;
      };
      const read = async (offset: string) => {
        const r = await fetch(`${url}?offset=${offset}`);
        return { status: r.status, body: Buffer.from(await r.arrayBuffer()), next: r.headers.get("Stream-Next-Offset"), upToDate: r.headers.get("Stream-Up-To-Date") };
      };
      expect((await fetch(url, { method: "PUT", headers: { "Content-Type": "application/octet-stream" } })).status).toBe(201);
      const offsets: string[] = [];
      for (let i = 0; i < 100; i++) offsets.push(await append(i));

      // Caught up: the standby serves the read (its own ds_chunks scans count up).
      await caughtUp();
      const before = await standbyChunkScans(schema);
      const all = await read("-1");
      expect({ status: all.status, same: all.body.equals(expected(100)), next: all.next, upToDate: all.upToDate })
        .toEqual({ status: 200, same: true, next: offsets[99], upToDate: "true" });
      let scans = before;
      for (const deadline = Date.now() + 5_000; scans === before && Date.now() < deadline; await sleep(200)) scans = await standbyChunkScans(schema);
      expect(scans).toBeGreaterThan(before);

      // Replay paused: the standby lags without bound; reads still return everything.
      expect((await standby!.psql("SELECT pg_wal_replay_pause()")).code).toBe(0);
      for (let i = 100; i < 150; i++) offsets.push(await append(i));
      const lagging = await read("-1");
      expect({ status: lagging.status, same: lagging.body.equals(expected(150)), next: lagging.next, upToDate: lagging.upToDate })
        .toEqual({ status: 200, same: true, next: offsets[149], upToDate: "true" });
      const resumed = await read(offsets[99]);
      expect({ same: resumed.body.equals(expected(150, 100)), next: resumed.next }).toEqual({ same: true, next: offsets[149] });
      // A stream the standby has never seen is no 404; its initial body is read from the primary.
      const fresh = `${s.url}/v1/stream/sr-new`;
      expect((await fetch(fresh, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "born while the standby lags" })).status).toBe(201);
      const freshRead = await fetch(`${fresh}?offset=-1`);
      expect({ status: freshRead.status, body: await freshRead.text() }).toEqual({ status: 200, body: "born while the standby lags" });
      expect((await standby!.psql("SELECT pg_wal_replay_resume()")).code).toBe(0);

      // Standby stopped: reads go to the primary, without errors.
      expect((await standby!.stop("immediate")).code).toBe(0);
      for (let i = 150; i < 160; i++) offsets.push(await append(i));
      for (let k = 0; k < 3; k++) {
        const down = await read(k === 0 ? "-1" : offsets[100]);
        expect({ status: down.status, next: down.next }).toEqual({ status: 200, next: offsets[159] });
        expect(down.body.equals(k === 0 ? expected(160) : expected(160, 101))).toBe(true);
      }
      expect((await standby!.start()).code).toBe(0);
      expect(s.output()).not.toContain("unexpected error");
      await s.stop();
    }, 120_000);
  }
});
