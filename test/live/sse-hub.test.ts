// SSE hubs and change notifications against a real database (PGlite, and Postgres when
// DATABASE_URL is set): small appends reach every caught-up reader from the notification
// alone, larger ones through one shared read, and nothing is lost or sent twice.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Member, SseHubs } from "../../src/live/sse-hub.ts";
import type { SharedReads } from "../../src/live/shared-reads.ts";
import type { Store, StreamRecord } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";
import { type Live, openLive } from "../support/live.ts";
import { Signal } from "../support/signal.ts";
import { createParams } from "../support/store-fixture.ts";
import { jsonMessages } from "../support/json.ts";

const enc = (s: string) => new TextEncoder().encode(s);
/** An append this size always travels inline in its notification (store/streams/change.ts). */
const INLINE_MAX = 2048;
const dec = new TextDecoder();

interface Probe extends Member {
  events: string[];
  finished: boolean;
  /** Whether its client has room (runtime/direct-stream.ts); the hub asks before writing. */
  room: boolean;
  /** The hub state it was handed when dropped for lack of room. */
  droppedAt?: StreamRecord;
}

/** Fires whenever any probe receives bytes or is finished. */
const delivered = new Signal();

function probe(stream: StreamRecord, pos = stream.tail): Probe {
  const p: Probe = {
    pos,
    cursorBase: 0,
    events: [],
    finished: false,
    room: true,
    hasRoom: () => p.room,
    fellBehind: (state) => {
      p.droppedAt = state;
      delivered.notify();
    },
    send: (b) => {
      p.events.push(dec.decode(b));
      delivered.notify();
    },
    finish: () => {
      p.finished = true;
      delivered.notify();
    },
  };
  return p;
}

/** The concatenated payload of every data event a probe got (text streams). */
const dataOf = (p: Probe) =>
  p.events
    .flatMap((e) => e.split("\n\n"))
    .filter((e) => e.startsWith("event: data\n"))
    .map((e) => e.slice("event: data\n".length).split("\n").map((l) => l.slice("data:".length).replace(/^ /, "")).join("\n"))
    .join("");

const until = (cond: () => boolean, what: string) => delivered.until(cond, what);

for (const backend of backends) {
  describe(`sse hubs on ${backend.name}`, () => {
    let live: Live;
    let store: Store;
    let hubs: SseHubs;
    let shared: SharedReads;
    let reads = 0;

    beforeAll(async () => {
      live = await openLive(backend, { store: { appendBatchMax: 256 } });
      ({ store, hubs, reads: shared } = live);
      const read = store.read.bind(store);
      store.read = (...args) => {
        reads++;
        return read(...args);
      };
    }, 30_000);
    afterAll(() => live.close(), 30_000);

    const create = async (path: string, contentType = "text/plain") => {
      await store.create(createParams(path, { contentType }));
      // as the SSE handler does: the live look-up goes through the notification-kept cache
      return (await shared.lookup(path))!;
    };
    const append = (path: string, body: string, close = false) =>
      store.append({ path, contentType: "text/plain", body: enc(body), messages: null, close, streamSeq: null });

    test("small appends reach every member from the notification, without a query; close ends them", async () => {
      const s = await create("/hub/small");
      const members = [probe(s), probe(s), probe(s)];
      const leaves = members.map((m) => hubs.join(s, m));
      reads = 0;
      await append("/hub/small", "hello ");
      await append("/hub/small", "world");
      await until(() => members.every((m) => dataOf(m) === "hello world"), "both appends at every member");
      expect(reads).toBe(0);
      expect(members[0].events.join("")).toContain('"upToDate":true');
      await append("/hub/small", "", true);
      await until(() => members.every((m) => m.finished), "close to end every member");
      for (const m of members) {
        expect(m.events.at(-1)).toContain('"streamClosed":true');
        expect(dataOf(m)).toBe("hello world");
      }
      expect(reads).toBe(0);
      expect(hubs.readerCount).toBe(0);
      for (const leave of leaves) leave();
    });

    test("a member whose connection throws is dropped; the others still get the event", async () => {
      const s = await create("/hub/broken");
      const broken = probe(s);
      broken.send = () => {
        throw new Error("socket gone");
      };
      const members = [probe(s), broken, probe(s)];
      const leaves = members.map((m) => hubs.join(s, m));
      let thrown = false; // a hook that fails once must not cost anyone a wake-up
      live.notifier.addHook({
        applyChange: () => {
          if (thrown) return;
          thrown = true;
          throw new Error("a failing hook");
        },
      });
      await append("/hub/broken", "still delivered");
      await until(() => dataOf(members[0]) === "still delivered" && dataOf(members[2]) === "still delivered", "delivery past the broken member");
      expect(broken.finished).toBe(true);
      for (const leave of leaves) leave();
    });

    test("a member whose client stops reading is dropped with its position, not queued to (issue 25)", async () => {
      const s = await create("/hub/slow");
      const fast = probe(s);
      const slow = probe(s);
      const leaves = [hubs.join(s, fast), hubs.join(s, slow)];
      await append("/hub/slow", "first");
      await until(() => dataOf(slow) === "first", "the first append at both");
      const at = slow.pos;
      slow.room = false;
      await append("/hub/slow", " second");
      await append("/hub/slow", "x".repeat(INLINE_MAX * 2)); // through the hub's own read
      await until(() => dataOf(fast).endsWith("x".repeat(INLINE_MAX * 2)) && slow.droppedAt !== undefined, "the fast member served, the slow one dropped");
      expect(dataOf(slow)).toBe("first");
      expect(slow.pos).toBe(at);
      expect(slow.finished).toBe(false);
      expect(slow.droppedAt!.tail).toBeGreaterThan(at);
      expect(hubs.readersOn(s.id)).toBe(1);
      for (const leave of leaves) leave();
    });

    test("appends too big for a notification go through one shared read", async () => {
      const s = await create("/hub/big");
      const members = [probe(s), probe(s), probe(s), probe(s)];
      const leaves = members.map((m) => hubs.join(s, m));
      const body = "x".repeat(INLINE_MAX * 2);
      reads = 0;
      await append("/hub/big", body);
      await until(() => members.every((m) => dataOf(m) === body), "the big append at every member");
      expect(reads).toBe(1);
      for (const leave of leaves) leave();
    });

    test("a member behind the stream is caught up, then shares the live path", async () => {
      const s = await create("/hub/behind");
      await append("/hub/behind", "old ");
      const ahead = probe((await store.find("/hub/behind"))!);
      const behind = probe(s, 0); // joins with the record from before the first append
      const leaves = [hubs.join((await store.find("/hub/behind"))!, ahead), hubs.join(s, behind)];
      await until(() => dataOf(behind) === "old ", "catch-up of the member that was behind");
      await append("/hub/behind", "new");
      await until(() => dataOf(behind) === "old new" && dataOf(ahead) === "new", "the live append at both");
      for (const leave of leaves) leave();
    });

    test("JSON streams get arrays; a deleted stream ends its members", async () => {
      const s = await create("/hub/json", "application/json");
      const m = probe(s);
      hubs.join(s, m);
      await store.append({ path: "/hub/json", contentType: "application/json", body: enc('[{"a":1},{"b":2}]'), messages: jsonMessages([enc('{"a":1}'), enc('{"b":2}')]), close: false, streamSeq: null } as never);
      await until(() => dataOf(m) !== "", "the JSON append");
      expect(JSON.parse(dataOf(m))).toEqual([{ a: 1 }, { b: 2 }]);
      await store.delete("/hub/json");
      await until(() => m.finished, "delete to end the member");
    });

    test("a group over hundreds of streams notifies every one, with data while the budget lasts", async () => {
      const n = 200;
      await Promise.all(Array.from({ length: n }, (_, i) => create(`/hub/many/${i}`)));
      const ids = new Set<number>();
      for (let i = 0; i < n; i++) ids.add((await store.find(`/hub/many/${i}`))!.id);
      const changes = live.changes;
      changes.length = 0;
      const body = "y".repeat(INLINE_MAX);
      await Promise.all(Array.from({ length: n }, (_, i) => append(`/hub/many/${i}`, body)));
      await live.changed.until(() => changes.filter((c) => ids.has(c.id)).length >= n, "a change for every stream");
      const got = changes.filter((c) => ids.has(c.id));
      expect(new Set(got.map((c) => c.id)).size).toBe(n);
      for (const c of got) {
        expect(c.state).toEqual({ tail: INLINE_MAX, closed: false });
        if (!c.data) continue;
        expect(c.data.from).toBe(0);
        expect(dec.decode(c.data.units[0])).toBe(body);
      }
      // the first stream of each group carries its data; groups hold many streams here
      const inline = got.filter((c) => c.data).length;
      expect(inline).toBeGreaterThan(0);
      expect(inline).toBeLessThan(n);
    });
  });
}
