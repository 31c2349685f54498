// The writer cache must never run ahead of the database. A group retried under row locks
// runs in a transaction; if its COMMIT fails (the connection lost with a Postgres restart,
// here a deferred trigger refusing once), nothing was stored, and the client's retry of
// the same producer seq must be stored, not answered "duplicate" from the cache. (Found by
// test/reliability/faults.test.ts: an acknowledged append missing after a fast restart.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendGroup, type AppendRequest, WriterCache } from "../../src/store/append.ts";
import { type Db, sql } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function req(seq: number): AppendRequest {
  return {
    path: "/wc/a",
    contentType: "text/plain",
    body: enc(`<${seq}>`),
    messages: null,
    close: false,
    streamSeq: null,
    producer: { id: "p", epoch: 0, seq },
  };
}

for (const backend of backends) {
  describe(`writer cache on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    beforeAll(async () => {
      db = await backend.open();
      store = new Store(db, { appendBatchMax: 8 });
      await store.create({ path: "/wc/a", contentType: "text/plain", contentTypeGiven: true, isJson: false, ttlSeconds: null, expiresAt: null, closed: false, units: [] });
    });
    afterAll(async () => {
      await store.drained();
      await db.close();
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
      expect(read.units.map((u) => new TextDecoder().decode(u)).join("")).toBe("<0><1>");
    });
  });
}
