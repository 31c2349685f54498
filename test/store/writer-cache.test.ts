// The writer cache must never run ahead of the database. A group retried under row locks
// runs in a transaction; if its COMMIT fails (the connection lost with a Postgres restart,
// here a deferred trigger refusing once), nothing was stored, and the client's retry of
// the same producer seq must be stored, not answered "duplicate" from the cache. (Found by
// test/reliability/faults.test.ts: an acknowledged append missing after a fast restart.)
import { describe, expect, test } from "bun:test";
import { appendGroup, type AppendRequest, WriterCache } from "../../src/store/streams/append.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";
import { countQueries } from "../support/count-queries.ts";

const req = (seq: number, id = "p", path = "/wc/a"): AppendRequest => appendRequest(path, `<${id}${seq}>`, { producer: { id, epoch: 0, seq } });

for (const backend of backends) {
  describe(`writer cache on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, { appendBatchMax: 8 }, async (opened) => {
      ({ db, store } = opened);
      for (const path of ["/wc/a", "/wc/b"]) await store.create(createParams(path));
    });

    test("a locked group whose COMMIT fails leaves the cache as it was in the database", async () => {
      const cache = new WriterCache();
      const first = await appendGroup(db, store.channel, [req(0)], false, cache);
      expect(first[0]).toMatchObject({ ok: true, value: { status: 200 } });
      // From now on the next commit that stored a chunk is refused, once.
      await db.exec(`
        CREATE SEQUENCE wc_commits;
        CREATE FUNCTION wc_refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('wc_commits') = 1 THEN RAISE EXCEPTION 'commit refused (test)'; END IF;
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER wc_refuse AFTER INSERT ON ds_chunks DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION wc_refuse_once();`);
      await expect(appendGroup(db, store.channel, [req(1)], true, cache)).rejects.toThrow(/commit refused/);
      // The retry of seq 1 must write it (200), not call it a duplicate (204) of nothing.
      const retry = await appendGroup(db, store.channel, [req(1)], false, cache);
      expect(retry[0]).toMatchObject({ ok: true, value: { status: 200 } });
      const rows = await db.rows<{ last_seq: unknown }>(sql`SELECT last_seq FROM ds_producers WHERE producer_id = 'p'`);
      expect(Number(rows[0].last_seq)).toBe(1);
      const s = await store.find("/wc/a");
      const read = await store.read(s!, 0, 1 << 20);
      expect(read.units.map((u) => new TextDecoder().decode(u)).join("")).toBe("<p0><p1>");
    });

    test("producers stay known across groups that name different ones; not once the stream moved elsewhere", async () => {
      const text = async () => (await store.read((await store.find("/wc/b"))!, 0, 1 << 20)).units.map((u) => new TextDecoder().decode(u)).join("");
      const counter = countQueries(db); // the group's row read; its write is not counted
      const cache = new WriterCache();
      const ok = (r: unknown, status: number) => expect(r).toMatchObject({ ok: true, value: { status } });
      ok((await appendGroup(db, store.channel, [req(0, "x", "/wc/b")], false, cache))[0], 200);
      ok((await appendGroup(db, store.channel, [req(0, "y", "/wc/b")], false, cache))[0], 200);
      expect(counter.queries).toBe(2); // each producer read once, when first named
      // Groups naming x, then y, then x again: both are known, no row read.
      ok((await appendGroup(db, store.channel, [req(1, "x", "/wc/b")], false, cache))[0], 200);
      ok((await appendGroup(db, store.channel, [req(1, "y", "/wc/b")], false, cache))[0], 200);
      ok((await appendGroup(db, store.channel, [req(2, "x", "/wc/b")], false, cache))[0], 200);
      expect(counter.queries).toBe(2);

      // Another instance (its own cache) appends x's seq 3. Ours still remembers x at seq 2.
      ok((await appendGroup(db, store.channel, [req(3, "x", "/wc/b")], false, new WriterCache()))[0], 200);
      // Our next group names a new producer z: the row is read, and since the stream moved,
      // what we knew of x is not carried over. x's retry of seq 3 is then a duplicate.
      ok((await appendGroup(db, store.channel, [req(0, "z", "/wc/b")], false, cache))[0], 200);
      ok((await appendGroup(db, store.channel, [req(3, "x", "/wc/b")], false, cache))[0], 204);
      ok((await appendGroup(db, store.channel, [req(4, "x", "/wc/b")], false, cache))[0], 200);
      expect(await text()).toBe("<x0><y0><x1><y1><x2><x3><z0><x4>");
    });

    test("a notification that comes in while the stream's group is written is judged against what that group commits", async () => {
      const cache = new WriterCache();
      const ok = (r: unknown) => expect(r).toMatchObject({ ok: true });
      ok((await appendGroup(db, store.channel, [req(0, "n", "/wc/b")], false, cache))[0]);
      const at = cache.peek("/wc/b")!;
      const id = at.record.id;
      // A group that commits tail + 10: our own commit's notification comes in first.
      const commit = (notified: Parameters<WriterCache["applyChange"]>[0]) => {
        const w = cache.take("/wc/b", [])!;
        w.touched = true;
        w.state.tail = at.state.tail + 10;
        cache.hold([id]);
        cache.applyChange(notified);
        cache.remember("/wc/b", w);
        cache.release([id]);
        return cache.peek("/wc/b");
      };
      const tail = at.state.tail;
      expect(commit({ id, state: { tail: tail + 10, closed: false } })?.state.tail).toBe(tail + 10);
      // Past our commit (another instance appended after it), closed, or deleted: read next time.
      expect(commit({ id, state: { tail: tail + 11, closed: false } })).toBeUndefined();
      ok((await appendGroup(db, store.channel, [req(1, "n", "/wc/b")], false, cache))[0]); // re-read, remembered again
      const again = cache.peek("/wc/b")!.state.tail;
      at.state.tail = again; // (commit() builds on the remembered tail)
      expect(commit({ id, state: { tail: again, closed: true } })).toBeUndefined();
      ok((await appendGroup(db, store.channel, [req(2, "n", "/wc/b")], false, cache))[0]);
      at.state.tail = cache.peek("/wc/b")!.state.tail;
      expect(commit({ id })).toBeUndefined();
      // Outside a group, a notification past what is remembered still drops the entry.
      ok((await appendGroup(db, store.channel, [req(3, "n", "/wc/b")], false, cache))[0]);
      const now = cache.peek("/wc/b")!.state.tail;
      cache.applyChange({ id, state: { tail: now, closed: false } });
      expect(cache.peek("/wc/b")?.state.tail).toBe(now);
      cache.applyChange({ id, state: { tail: now + 1, closed: false } });
      expect(cache.peek("/wc/b")).toBeUndefined();
    });

    test("producer rows match what was accepted, for known and new producers in one group", async () => {
      const cache = new WriterCache();
      const rowsOf = async () =>
        Object.fromEntries(
          (await db.rows<{ producer_id: string; epoch: unknown; last_seq: unknown }>(
            sql`SELECT p.producer_id, p.epoch, p.last_seq FROM ds_producers p JOIN ds_streams s ON s.id = p.stream_id
                WHERE s.path = '/wc/a' AND producer_id LIKE 'm%'`,
          )).map((r) => [r.producer_id, [Number(r.epoch), Number(r.last_seq)]]),
        );
      const group = (reqs: AppendRequest[]) => appendGroup(db, store.channel, reqs, false, cache);
      // New producers, one of them twice in its first group.
      await group([req(0, "m1"), req(1, "m1"), req(0, "m2")]);
      expect(await rowsOf()).toEqual({ m1: [0, 1], m2: [0, 0] });
      // Known ones beside a new one, and a new epoch.
      const bumped: AppendRequest = { ...req(0, "m2"), producer: { id: "m2", epoch: 1, seq: 0 } };
      const out = await group([req(2, "m1"), bumped, req(0, "m3"), req(3, "m1")]);
      expect(out.every((r) => "ok" in r && r.ok)).toBe(true);
      expect(await rowsOf()).toEqual({ m1: [0, 3], m2: [1, 0], m3: [0, 0] });
      // A fresh cache (another instance) reads those rows: retries are duplicates, the next seq is new.
      const other = new WriterCache();
      const again = await appendGroup(db, store.channel, [req(3, "m1"), req(1, "m3")], false, other);
      expect(again).toMatchObject([{ ok: true, value: { status: 204 } }, { ok: true, value: { status: 200 } }]);
      expect(await rowsOf()).toEqual({ m1: [0, 3], m2: [1, 0], m3: [0, 1] });
    });
  });
}
