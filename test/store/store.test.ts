// Storage behaviour, run against PGlite and (with DATABASE_URL) real Postgres.
import { describe, expect, test } from "bun:test";
import { BadRequest, Conflict, ProducerSeqGap, StreamClosedConflict, StreamGone, StreamNotFound } from "../../src/protocol/errors.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store, type StoreOptions } from "../../src/store/index.ts";
import type { AppendRequest } from "../../src/store/streams/append.ts";
import { visible } from "../../src/store/streams/streams.ts";
import { Appender } from "../../src/store/streams/appender.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";
import { jsonMessages } from "../support/json.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (parts: Uint8Array[]) => parts.map((p) => new TextDecoder().decode(p)).join("");

const params = createParams;
const append = (store: Store, path: string, text: string, over: Partial<AppendRequest> = {}) => store.append(appendRequest(path, text, over));

async function readAll(store: Store, path: string, cap = 1 << 20): Promise<string> {
  const s = visible(await store.find(path));
  let from = 0;
  let out = "";
  while (from < s.tail) {
    const r = await store.read(s, from, cap);
    out += dec(r.units);
    from = r.next;
  }
  return out;
}

async function chunkRows(db: Db): Promise<number> {
  const rows = await db.rows<{ n: unknown }>(sql`SELECT count(*) AS n FROM ds_chunks`);
  return Number(rows[0].n);
}

for (const backend of backends) {
  describe(`store on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, { appendBatchMax: 64 }, (opened) => ({ db, store } = opened));
    /** Two stores on one database behave like two instances: own appenders, same rows. */
    const twoInstances = (opts: StoreOptions = {}) => [new Store(db, { appendBatchMax: 8, ...opts }), new Store(db, { appendBatchMax: 8, ...opts })];

    test("create is idempotent on matching config and conflicts otherwise", async () => {
      expect((await store.create(params("/s/a"))).created).toBe(true);
      expect((await store.create(params("/s/a", { contentType: "TEXT/PLAIN" }))).created).toBe(false);
      await expect(store.create(params("/s/a", { contentType: "application/json", isJson: true }))).rejects.toBeInstanceOf(Conflict);
      await expect(store.create(params("/s/a", { ttlSeconds: 5 }))).rejects.toBeInstanceOf(Conflict);
      await expect(store.create(params("/s/a", { closed: true }))).rejects.toBeInstanceOf(Conflict);
    });

    test("appends land in order and reads page by a byte cap without tearing appends", async () => {
      await store.create(params("/s/read", { body: enc("hello ") }));
      for (const w of ["big ", "wide ", "world"]) await append(store, "/s/read", w);
      expect(await readAll(store, "/s/read")).toBe("hello big wide world");
      expect(await readAll(store, "/s/read", 5)).toBe("hello big wide world");
      const s = visible(await store.find("/s/read"));
      const first = await store.read(s, 0, 7);
      expect(dec(first.units)).toBe("hello big ");
      expect(first.next).toBe(10);
    });

    test("concurrent appends share transactions and each gets its own range", async () => {
      const paths = Array.from({ length: 10 }, (_, i) => `/s/group-${i}`);
      for (const p of paths) await store.create(params(p));
      const before = { ...store.appendStats };
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => append(store, paths[i % 10], `<${i}>`)),
      );
      // All 200 are queued in one turn: groups of up to appendBatchMax (64) appends each,
      // and none retried (no other instance writes here).
      expect(store.appendStats.appends - before.appends).toBe(200);
      expect(store.appendStats.groups - before.groups).toBe(Math.ceil(200 / 64));
      expect(store.appendStats.lockedRetries - before.lockedRetries).toBe(0);
      for (const p of paths) {
        const text = await readAll(store, p);
        const seen = text.match(/<\d+>/g) ?? [];
        expect(seen.length).toBe(20);
      }
      const tails = results.map((r) => r.tail);
      expect(tails.every((t) => t > 0)).toBe(true);
    });

    test("two instances appending to one stream race safely (compare-and-set, then locks)", async () => {
      // A second Store on the same database behaves like another instance: its own
      // appender, its own groups, the same rows.
      const [one, other] = twoInstances({ appendConcurrency: 4 });
      await one.create(params("/s/race"));
      const writes = Array.from({ length: 120 }, (_, i) => append(i % 2 ? one : other, "/s/race", `<${i}>`));
      const producerWrites = Array.from({ length: 30 }, (_, seq) =>
        append(seq % 2 ? one : other, "/s/race", `(p${seq})`, { producer: { id: "racer", epoch: 0, seq } }),
      );
      const settled = await Promise.allSettled([...writes, ...producerWrites]);
      const text = await readAll(store, "/s/race");
      // every acknowledged plain append is stored exactly once
      settled.slice(0, 120).forEach((s, i) => {
        expect(s.status).toBe("fulfilled");
        expect(text.split(`<${i}>`).length - 1).toBe(1);
      });
      // producer appends raced across instances: each stored at most once, and every
      // acknowledged one is stored; the stored ones form a gap-free prefix 0..n-1
      const stored = (text.match(/\(p\d+\)/g) ?? []).map((m) => Number(m.slice(2, -1)));
      expect(new Set(stored).size).toBe(stored.length);
      settled.slice(120).forEach((s, seq) => {
        if (s.status === "fulfilled" && s.value.status === 200) expect(stored).toContain(seq);
      });
      expect([...stored].sort((a, b) => a - b)).toEqual(stored.map((_, i) => i));
      const tails = settled.slice(0, 120).map((s) => (s as PromiseFulfilledResult<{ tail: number }>).value.tail);
      expect(new Set(tails).size).toBe(120);
      // A lost compare-and-set, made certain: `one` remembers the stream's state, `other`
      // moves the tail, so `one`'s next write must fail its check and redo under locks.
      await append(one, "/s/race", "[a]");
      await append(other, "/s/race", "[b]");
      const before = one.appendStats.lockedRetries;
      const last = await append(one, "/s/race", "[c]");
      expect(one.appendStats.lockedRetries).toBe(before + 1);
      expect((await readAll(one, "/s/race")).endsWith("[a][b][c]")).toBe(true);
      expect(last.tail).toBe(visible(await one.find("/s/race")).tail);
      await one.drained();
      await other.drained();
    });

    test("an append that does not fit a group holds back the later appends to its stream", async () => {
      await store.create(params("/s/held-a"));
      await store.create(params("/s/held-b"));
      // Groups of at most 1,000 bytes: 600 bytes to a, then 600 to b (does not fit), then 10
      // to b (would fit). b's 10 bytes must wait for b's 600, or producer seq 1 would skip 0.
      const appender = new Appender(db, store.channel, 8, 1, 32, 1000);
      const results = await Promise.allSettled([
        appender.append(appendRequest("/s/held-a", "a".repeat(600))),
        appender.append(appendRequest("/s/held-b", "b".repeat(600), { producer: { id: "held", epoch: 0, seq: 0 } })),
        appender.append(appendRequest("/s/held-b", "c".repeat(10), { producer: { id: "held", epoch: 0, seq: 1 } })),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
      expect(await readAll(store, "/s/held-b")).toBe(`${"b".repeat(600)}${"c".repeat(10)}`);
      expect(appender.stats.groups).toBe(2);
      await appender.drained();
    });

    test("appends queued behind their stream's group in flight are not rescanned as more arrive", async () => {
      await store.create(params("/s/queued-hot"));
      // 2,000 appends to one stream in one turn: once the first group is in flight, every later
      // arrival used to scan the whole queue for something to take (about n^2 / 2 looks).
      const appender = new Appender(db, store.channel, 256, 2, 32);
      // Count what the group-forming scans look at, from outside: each take() scans the queue.
      const internals = appender as unknown as { take(): unknown[]; queue: unknown[] };
      const take = internals.take.bind(appender);
      let scanned = 0;
      internals.take = () => {
        scanned += internals.queue.length;
        return take();
      };
      const n = 2000;
      const done = await Promise.all(
        Array.from({ length: n }, () =>
          appender.append(appendRequest("/s/queued-hot", "x")),
        ),
      );
      expect(done.at(-1)!.tail).toBe(n);
      expect(await readAll(store, "/s/queued-hot")).toBe("x".repeat(n));
      // Each group's take looks at what is queued once: here 32 + 1,968 + 1,712 + ... + 176.
      expect(scanned).toBeLessThan(10 * n);
      await appender.drained();
    });

    test("an instance's remembered stream state never outlives changes made elsewhere", async () => {
      const [a, b] = twoInstances();
      await a.create(params("/s/memo"));
      await append(a, "/s/memo", "x"); // a now remembers the stream's state
      // b replaces the stream with a closed JSON stream at the same path
      await b.delete("/s/memo");
      await b.create(params("/s/memo", { contentType: "application/json", isJson: true, closed: true }));
      await expect(append(a, "/s/memo", "y")).rejects.toBeInstanceOf(StreamClosedConflict);
      // b re-creates it open; a's next append lands on the new stream at position 0
      await b.delete("/s/memo");
      await b.create(params("/s/memo"));
      expect((await append(a, "/s/memo", "z")).tail).toBe(1);
      // b soft-deletes it (a fork keeps it): a gets 410, not a write into a deleted stream
      await b.create(params("/s/memo-fork", { fork: { sourcePath: "/s/memo", offset: null, subOffset: 0 } }));
      await b.delete("/s/memo");
      await expect(append(a, "/s/memo", "w")).rejects.toBeInstanceOf(StreamGone);
      // b closes a stream behind a's back: a's append is refused with the final offset
      await a.create(params("/s/memo2"));
      await append(a, "/s/memo2", "1");
      await b.append({ path: "/s/memo2", contentType: null, body: new Uint8Array(0), messages: null, close: true, streamSeq: null });
      await expect(append(a, "/s/memo2", "2")).rejects.toBeInstanceOf(StreamClosedConflict);
      expect(await readAll(a, "/s/memo2")).toBe("1");
      await a.drained();
      await b.drained();
    });

    test("a change notification from elsewhere drops remembered state: no lost compare-and-set", async () => {
      const [a, b] = twoInstances();
      await a.create(params("/s/observed"));
      const id = visible(await a.find("/s/observed")).id;
      await append(a, "/s/observed", "a"); // a remembers tail 1
      // a's own notification (tail 1) changes nothing it remembers
      a.applyChange({ id, state: { tail: 1, closed: false } });
      await append(b, "/s/observed", "b"); // tail 2, behind a's back
      a.applyChange({ id, state: { tail: 2, closed: false } }); // what b's commit notifies
      const before = a.appendStats.lockedRetries;
      expect((await append(a, "/s/observed", "c")).tail).toBe(3);
      expect(a.appendStats.lockedRetries).toBe(before); // read the row, no lost compare-and-set
      // without the notification the remembered state is stale: compare-and-set lost, retried
      await append(b, "/s/observed", "d");
      expect((await append(a, "/s/observed", "e")).tail).toBe(5);
      expect(a.appendStats.lockedRetries).toBe(before + 1);
      expect(await readAll(a, "/s/observed")).toBe("abcde");
      await a.drained();
      await b.drained();
    });

    test("one bad append in a group fails alone", async () => {
      await store.create(params("/s/ok"));
      await store.create(params("/s/closed", { closed: true }));
      const settled = await Promise.allSettled([
        append(store, "/s/ok", "a"),
        append(store, "/s/closed", "x"),
        append(store, "/s/missing", "y"),
        append(store, "/s/ok", "b", { contentType: "image/png" }),
        append(store, "/s/ok", "c"),
      ]);
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "rejected", "fulfilled"]);
      expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(StreamClosedConflict);
      expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(StreamNotFound);
      expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(Conflict);
      expect(await readAll(store, "/s/ok")).toBe("ac");
    });

    test("producer state commits with the data: retries are not written twice", async () => {
      await store.create(params("/s/prod"));
      const p = (seq: number, text: string) => append(store, "/s/prod", text, { producer: { id: "w", epoch: 0, seq } });
      expect((await p(0, "a")).status).toBe(200);
      expect((await p(1, "b")).status).toBe(200);
      const dup = await p(1, "B");
      expect(dup.status).toBe(204);
      expect(dup.producer).toEqual({ epoch: 0, seq: 1 });
      await expect(p(3, "d")).rejects.toBeInstanceOf(ProducerSeqGap);
      // pipelined retries of the same request inside one group: written once
      const burst = await Promise.all([p(2, "c"), p(2, "c"), p(2, "c")]);
      expect(burst.map((b) => b.status).sort()).toEqual([200, 204, 204]);
      expect(await readAll(store, "/s/prod")).toBe("abc");
      const rows = await db.rows<{ last_seq: unknown }>(sql`SELECT last_seq FROM ds_producers WHERE producer_id = 'w'`);
      expect(Number(rows[0].last_seq)).toBe(2);
    });

    test("JSON streams store one row per message and read back as the same messages", async () => {
      await store.create(params("/s/json", { contentType: "application/json", isJson: true, body: enc("1") }));
      await store.append({
        path: "/s/json", contentType: "application/json", body: enc("[2,3]"), messages: jsonMessages([enc("2"), enc("3")]), close: false, streamSeq: null,
      });
      const s = visible(await store.find("/s/json"));
      expect(s.tail).toBe(3);
      expect((await store.read(s, 1, 1 << 20)).units.map((u) => new TextDecoder().decode(u))).toEqual(["2", "3"]);
    });

    test("forks point at their source: no data is copied, reads stitch one offset space", async () => {
      const big = new Uint8Array(256 * 1024).fill(120);
      await store.create(params("/s/src", { contentType: "application/octet-stream", body: big }));
      for (let i = 0; i < 15; i++) {
        await store.append(appendRequest("/s/src", big, { contentType: "application/octet-stream" }));
      }
      const before = await chunkRows(db);
      const { stream: fork } = await store.create(
        params("/s/fork", { contentType: "", contentTypeGiven: false, fork: { sourcePath: "/s/src", offset: null, subOffset: 0 } }),
      );
      expect(await chunkRows(db)).toBe(before);
      expect(fork.tail).toBe(16 * big.byteLength);
      expect(fork.contentType).toBe("application/octet-stream");
      await store.append(appendRequest("/s/fork", "tail", { contentType: "application/octet-stream" }));
      const r = await store.read(visible(await store.find("/s/fork")), fork.tail - 2, 1 << 20);
      expect(dec(r.units)).toBe("xxtail");
    });

    test("a fork sub-offset splits the append at the anchor, and no further", async () => {
      await store.create(params("/s/sub", { body: enc("hello") }));
      await append(store, "/s/sub", "world");
      const fork = (path: string, offset: number | null, subOffset: number) =>
        store.create(params(path, { fork: { sourcePath: "/s/sub", offset, subOffset } }));
      await fork("/s/sub-a", 0, 3);
      expect(await readAll(store, "/s/sub-a")).toBe("hel");
      await fork("/s/sub-b", 5, 5);
      expect(await readAll(store, "/s/sub-b")).toBe("helloworld");
      await expect(fork("/s/sub-c", 0, 6)).rejects.toBeInstanceOf(BadRequest);
      await expect(fork("/s/sub-d", null, 1)).rejects.toBeInstanceOf(BadRequest);
      await expect(fork("/s/sub-e", 99, 0)).rejects.toBeInstanceOf(BadRequest);
    });

    test("deleting a source with forks soft-deletes it; the last fork's delete cascades", async () => {
      await store.create(params("/s/l0", { body: enc("A") }));
      await store.create(params("/s/l1", { fork: { sourcePath: "/s/l0", offset: null, subOffset: 0 } }));
      await append(store, "/s/l1", "B");
      await store.create(params("/s/l2", { fork: { sourcePath: "/s/l1", offset: null, subOffset: 0 } }));
      await append(store, "/s/l2", "C");
      await store.delete("/s/l0");
      await store.delete("/s/l1");
      expect(() => visible(undefined)).toThrow(StreamNotFound);
      await expect(store.find("/s/l0").then(visible)).rejects.toBeInstanceOf(StreamGone);
      await expect(store.create(params("/s/l0"))).rejects.toBeInstanceOf(Conflict);
      expect(await readAll(store, "/s/l2")).toBe("ABC");
      const ids = [(await store.find("/s/l0"))!.id, (await store.find("/s/l1"))!.id];
      await store.delete("/s/l2");
      for (const p of ["/s/l0", "/s/l1", "/s/l2"]) expect(await store.find(p)).toBeUndefined();
      const left = await db.rows<{ n: unknown }>(
        sql`SELECT count(*) AS n FROM ds_chunks WHERE stream_id IN (${ids[0]}, ${ids[1]})`,
      );
      expect(Number(left[0].n)).toBe(0);
    });

    test("expired streams are absent, can be re-created, and the sweeper removes them", async () => {
      await store.create(params("/s/exp", { expiresAt: new Date(Date.now() - 1000), body: enc("old") }));
      await expect(store.find("/s/exp").then(visible)).rejects.toBeInstanceOf(StreamNotFound);
      await expect(append(store, "/s/exp", "x")).rejects.toBeInstanceOf(StreamNotFound);
      expect((await store.create(params("/s/exp", { contentType: "application/json", isJson: true }))).created).toBe(true);
      await store.create(params("/s/exp2", { expiresAt: new Date(Date.now() - 1000), body: enc("old") }));
      expect(await store.sweep()).toBeGreaterThanOrEqual(1);
      const rows = await db.rows(sql`SELECT id FROM ds_streams WHERE path = '/s/exp2'`);
      expect(rows.length).toBe(0);
    });

    test("a fork's expiry releases its reference on the source", async () => {
      await store.create(params("/s/rsrc", { body: enc("x") }));
      await store.create(params("/s/rfork", { ttlSeconds: 1, fork: { sourcePath: "/s/rsrc", offset: null, subOffset: 0 } }));
      expect((await store.find("/s/rsrc"))!.refCount).toBe(1);
      await db.rows(sql`UPDATE ds_streams SET last_access = now() - interval '10 seconds' WHERE path = '/s/rfork'`);
      await store.sweep();
      expect((await store.find("/s/rsrc"))!.refCount).toBe(0);
    });
  });
}
