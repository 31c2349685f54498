// Compare-and-append (Stream-Expected-Offset) in the store: the expected tail is checked by
// the group's compare-and-set statement, not by a read ahead of it. A conditional append in
// a group sees the tail left by the group's earlier appends; an instance whose remembered
// tail is stale never accepts or refuses on it; two instances racing on one stream get
// exactly one winner per round.
import { describe, expect, test } from "bun:test";
import { ExpectedOffsetConflict, StreamClosedConflict } from "../../src/protocol/errors.ts";
import { formatOffset } from "../../src/protocol/offsets.ts";
import { appendGroup, WriterCache } from "../../src/store/streams/append.ts";
import type { Db } from "../../src/store/driver/db.ts";
import { Store, visible } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const params = createParams;
const req = appendRequest;
async function readAll(store: Store, path: string): Promise<string> {
  const s = visible(await store.find(path));
  let from = 0;
  let out = "";
  while (from < s.tail) {
    const r = await store.read(s, from, 1 << 20);
    out += r.units.map((u) => new TextDecoder().decode(u)).join("");
    from = r.next;
  }
  return out;
}

for (const backend of backends) {
  describe(`compare-and-append on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, {}, (opened) => ({ db, store } = opened));

    test("in one group, a conditional append compares against the tail after the earlier appends", async () => {
      await store.create(params("/ca/group"));
      const at0 = formatOffset(0);
      const results = await appendGroup(db, store.channel, [
        req("/ca/group", "ab", { expectedOffset: at0 }),
        req("/ca/group", "cd", { expectedOffset: at0 }),
        req("/ca/group", "ef", { expectedOffset: formatOffset(2) }),
        req("/ca/group", "gh"),
      ]);
      expect(results[0]).toMatchObject({ ok: true, value: { tail: 2 } });
      expect(results[1]).toMatchObject({ ok: false });
      const refused = (results[1] as { error: ExpectedOffsetConflict }).error;
      expect(refused).toBeInstanceOf(ExpectedOffsetConflict);
      expect(refused.headers["Stream-Next-Offset"]).toBe(formatOffset(2));
      expect(results[2]).toMatchObject({ ok: true, value: { tail: 4 } });
      expect(results[3]).toMatchObject({ ok: true, value: { tail: 6 } });
      expect(await readAll(store, "/ca/group")).toBe("abefgh");
    });

    test("a stale remembered tail neither accepts nor refuses: the compare-and-set re-decides under lock", async () => {
      await store.create(params("/ca/stale"));
      const cache = new WriterCache();
      await appendGroup(db, store.channel, [req("/ca/stale", "1")], false, cache); // cache: tail 1
      await store.append(req("/ca/stale", "22")); // another instance: tail 3
      // Expecting the remembered tail: refused with the real one.
      const [stale] = await appendGroup(db, store.channel, [req("/ca/stale", "x", { expectedOffset: formatOffset(1) })], false, cache);
      expect("retry" in stale).toBe(true);
      const [locked] = await appendGroup(db, store.channel, [req("/ca/stale", "x", { expectedOffset: formatOffset(1) })], true, cache);
      expect((locked as { error: ExpectedOffsetConflict }).error.headers["Stream-Next-Offset"]).toBe(formatOffset(3));
      // Expecting the real tail while the cache still says 1 (the same instance path): accepted.
      await store.append(req("/ca/stale", "4"));
      const [again] = await appendGroup(db, store.channel, [req("/ca/stale", "y", { expectedOffset: formatOffset(4) })], false, cache);
      expect("retry" in again).toBe(true);
      const s = new Store(db);
      expect((await s.append(req("/ca/stale", "y", { expectedOffset: formatOffset(4) }))).tail).toBe(5);
      expect(await readAll(store, "/ca/stale")).toBe("1224y");
    });

    test("a fork compares against its own tail; a closed stream answers as closed", async () => {
      await store.create(params("/ca/src", { body: enc("abcdef") }));
      await store.create(params("/ca/fork", { fork: { sourcePath: "/ca/src", offset: 3, subOffset: 0 } }));
      await store.append(req("/ca/src", "ghi"));
      await expect(store.append(req("/ca/fork", "X", { expectedOffset: formatOffset(9) }))).rejects.toBeInstanceOf(ExpectedOffsetConflict);
      expect((await store.append(req("/ca/fork", "X", { expectedOffset: formatOffset(3) }))).tail).toBe(4);
      expect(await readAll(store, "/ca/fork")).toBe("abcX");
      await store.append(req("/ca/fork", "", { body: new Uint8Array(0), close: true }));
      await expect(store.append(req("/ca/fork", "Y", { expectedOffset: formatOffset(4) }))).rejects.toBeInstanceOf(StreamClosedConflict);
    });

    test("two instances racing, each retrying with the tail it is given: one winner per round, nothing lost or doubled", async () => {
      await store.create(params("/ca/race"));
      const instances = [new Store(db), new Store(db)];
      const rounds = 40;
      const wins = [0, 0];
      let tail = formatOffset(0);
      for (let round = 0; round < rounds; round++) {
        const outcomes = await Promise.allSettled(
          instances.map((s, w) => s.append(req("/ca/race", `<${round}:${w}>`, { expectedOffset: tail }))),
        );
        const won = outcomes.flatMap((o, w) => (o.status === "fulfilled" ? [w] : []));
        expect(won.length).toBe(1);
        wins[won[0]]++;
        const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
        expect(lost.reason).toBeInstanceOf(ExpectedOffsetConflict);
        tail = (lost.reason as ExpectedOffsetConflict).headers["Stream-Next-Offset"];
        expect(tail).toBe(formatOffset((outcomes[won[0]] as PromiseFulfilledResult<{ tail: number }>).value.tail));
      }
      const text = await readAll(store, "/ca/race");
      expect(text.match(/<\d+:\d>/g)!.length).toBe(rounds);
      for (let round = 0; round < rounds; round++) expect(text).toContain(`<${round}:`);
      await Promise.all(instances.map((s) => s.drained()));
    }, 60_000); // 2 s on PGlite here, 0.4 s on Postgres; room for a loaded machine
  });
}
