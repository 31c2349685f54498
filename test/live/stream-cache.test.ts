// The live-read stream cache must never hide a change whose notification has arrived.
import { expect, test } from "bun:test";
import type { StreamRecord } from "../../src/store/index.ts";
import { backends } from "../support/backends.ts";
import { openLive } from "../support/live.ts";
import { appendRequest, createParams } from "../support/store-fixture.ts";


for (const backend of backends) {
  test(`cached live look-ups follow every notified change and skip TTL streams (${backend.name})`, async () => {
    const live = await openLive(backend, { store: { appendBatchMax: 8 } });
    const { store, reads, notifier, cache } = live;
    /** The cache vouches that `s` is still its stream's state. */
    const vouched = (s: StreamRecord) => {
      const hit = cache.current(s);
      return hit !== undefined && hit.tail === s.tail && hit.closed === s.closed;
    };
    const notified = (id: number, after: number) => live.changes.slice(after).some((c) => c.id === id);
    try {
      await store.create(createParams("/k/a"));
      await store.create(createParams("/k/ttl", { ttlSeconds: 3600 }));
      const first = (await reads.lookup("/k/a"))!;
      expect(vouched(first)).toBe(true);
      let seen = live.changes.length;
      await store.append(appendRequest("/k/a", "xyz"));
      await live.changed.until(() => notified(first.id, seen), "the append's notification");
      // the notification carried the new state: the cache no longer vouches for the old one
      // and answers with the new one without a query
      expect(vouched(first)).toBe(false);
      const taken = reads.current(first, notifier.tick());
      expect(taken instanceof Promise).toBe(false);
      expect((taken as { tail: number }).tail).toBe(3);
      const second = (await reads.lookup("/k/a"))!;
      expect(second.tail).toBe(3);
      expect(vouched(second)).toBe(true);
      // a stream that can expire without a notification is never vouched for
      const ttl = (await reads.lookup("/k/ttl"))!;
      expect(vouched(ttl)).toBe(false);
      // deleting notifies too
      seen = live.changes.length;
      await store.delete("/k/a");
      await live.changed.until(() => notified(first.id, seen), "the delete's notification");
      expect(vouched(second)).toBe(false);
      expect(await reads.lookup("/k/a")).toBeUndefined();
    } finally {
      await live.close();
    }
  }, 30_000);
}
