// The live-read stream cache must never hide a change whose notification has arrived.
import { expect, test } from "bun:test";
import { Notifier } from "../../src/live/notifier.ts";
import { SharedReads } from "../../src/live/shared-reads.ts";
import { StreamCache } from "../../src/live/stream-cache.ts";
import { addChangeHooks } from "../../src/server.ts";
import { openDb } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";
import { migrate } from "../../src/store/migrate.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test("cached live look-ups follow every notified change and skip TTL streams", async () => {
  const db = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1 });
  await migrate(db);
  const store = new Store(db, { appendBatchMax: 8 });
  const notifier = new Notifier(db, store.channel, 60_000);
  const cache = new StreamCache(store, notifier);
  const reads = new SharedReads(store, notifier, cache);
  addChangeHooks(notifier, { store, cache, reads });
  await notifier.start();
  try {
    const base = { contentType: "text/plain", contentTypeGiven: true, isJson: false, expiresAt: null, closed: false, units: [] };
    await store.create({ ...base, path: "/k/a", ttlSeconds: null });
    await store.create({ ...base, path: "/k/ttl", ttlSeconds: 3600 });
    const first = (await reads.lookup("/k/a"))!;
    expect(reads.unchanged(first)).toBe(true);
    let woken = false;
    notifier.addHook({ applyChange: () => (woken = true) });
    await store.append({ path: "/k/a", contentType: "text/plain", body: enc("xyz"), messages: null, close: false, streamSeq: null });
    for (let i = 0; i < 100 && !woken; i++) await new Promise((r) => setTimeout(r, 10));
    expect(woken).toBe(true);
    // the notification carried the new state: the cache no longer vouches for the old one
    // and answers with the new one without a query
    expect(reads.unchanged(first)).toBe(false);
    const taken = reads.current(first, notifier.tick());
    expect(taken instanceof Promise).toBe(false);
    expect((taken as { tail: number }).tail).toBe(3);
    const second = (await reads.lookup("/k/a"))!;
    expect(second.tail).toBe(3);
    expect(reads.unchanged(second)).toBe(true);
    // a stream that can expire without a notification is never vouched for
    const ttl = (await reads.lookup("/k/ttl"))!;
    expect(reads.unchanged(ttl)).toBe(false);
    // deleting notifies too
    await store.delete("/k/a");
    for (let i = 0; i < 100 && reads.unchanged(second); i++) await new Promise((r) => setTimeout(r, 10));
    expect(reads.unchanged(second)).toBe(false);
    expect(await reads.lookup("/k/a")).toBeUndefined();
  } finally {
    await notifier.stop();
    await store.drained();
    await db.close();
  }
});
