// Two instances' append groups that touch the same streams must lock the rows in one
// order. Otherwise: group 1 (A, B) waits for A; group 2 (B, A) takes B and waits for A;
// when A frees up, group 1 takes it and waits for B: a deadlock, which Postgres breaks
// after deadlock_timeout (1 s) by aborting one of them (seen in the fault test as 1 s
// append stalls when writers on two instances resumed together). Here a third session
// holds A so that exact interleaving happens every time; group 2's order comes from its
// writer cache (remembered streams first). Needs DATABASE_URL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendGroup, type AppendRequest, WriterCache } from "../../src/store/streams/append.ts";
import { type Db, openDb, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";
import { createParams } from "../support/store-fixture.ts";

const pg = backends.find((b) => b.name === "postgres");
if (!pg) console.warn("test/store/append-lock-order.test.ts: SKIPPED (set DATABASE_URL)");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const req = (path: string): AppendRequest => ({
  path,
  contentType: "text/plain",
  body: new TextEncoder().encode("x"),
  messages: null,
  close: false,
  streamSeq: null,
});

describe.skipIf(!pg)("append groups lock streams in one order", () => {
  let a: Db;
  let b: Db;
  let store: Store;
  beforeAll(async () => {
    a = await pg!.open();
    b = await openDb({ databaseUrl: process.env.DATABASE_URL!, schema: a.schema, poolSize: 2 });
    store = new Store(a, { appendBatchMax: 8 });
    for (const path of ["/lo/a", "/lo/b"]) {
      await store.create(createParams(path));
    }
  });
  afterAll(async () => {
    await b.close();
    await store.drained();
    await a.close();
  });

  test("groups naming the same streams in opposite orders on two instances do not deadlock", async () => {
    const idA = (await store.find("/lo/a"))!.id;
    // Instance 2 remembers B (its last group wrote it) but not A: its next group finds the
    // streams in the order cache first, then database, i.e. B before A.
    const cache2 = new WriterCache();
    await appendGroup(b, store.channel, [req("/lo/b")], false, cache2);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = a.tx(async (q) => {
      await q.rows(sql`SELECT id FROM ds_streams WHERE id = ${idA} FOR UPDATE`);
      locked();
      await held;
    });
    await isLocked;
    const t0 = performance.now();
    const g1 = appendGroup(a, store.channel, [req("/lo/a"), req("/lo/b")]).then(() => "ok", (e) => `${e?.code ?? ""} ${e?.message ?? e}`);
    await sleep(150); // group 1 now waits for A
    const g2 = appendGroup(b, store.channel, [req("/lo/b"), req("/lo/a")], false, cache2).then(() => "ok", (e) => `${e?.code ?? ""} ${e?.message ?? e}`);
    await sleep(150); // group 2 waits for A too (holding B, unless it locks in id order)
    release();
    await holder;
    const outcomes = await Promise.all([g1, g2]);
    const ms = performance.now() - t0 - 300;
    expect(outcomes).toEqual(["ok", "ok"]);
    expect(ms).toBeLessThan(800);
  }, 30_000);
});
