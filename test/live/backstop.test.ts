// With no notification at all (here: a notifier listening on a channel nobody uses), the
// shared backstop poll still wakes exactly the waiters whose stream changed.
import { describe, expect, test } from "bun:test";
import { backends } from "../support/backends.ts";
import { openLive } from "../support/live.ts";
import { appendRequest, createParams } from "../support/store-fixture.ts";


for (const backend of backends) {
  describe(`backstop on ${backend.name}`, () => {
    test("wakes stale waiters without any notification, and only them", async () => {
      const live = await openLive(backend, { store: { appendBatchMax: 16 }, channel: "ds_nobody_listens_here", backstopMs: 100 });
      const { store, notifier } = live;
      try {
        const a = (await store.create(createParams("/b/a"))).stream;
        const b = (await store.create(createParams("/b/b"))).stream;
        const wa = notifier.subscribe(a.id, { tail: 0, closed: false });
        const wb = notifier.subscribe(b.id, { tail: 0, closed: false });
        const started = Date.now();
        await store.append(appendRequest("/b/a", "x"));
        expect(await wa.wait(3_000)).toBe(true);
        expect(Date.now() - started).toBeLessThan(1_000);
        // b did not change: its waiter sleeps through several backstop rounds
        expect(await wb.wait(400)).toBe(false);
        wa.cancel();
        wb.cancel();
        expect(notifier.waiterCount).toBe(0);
        expect(live.changes).toEqual([{ id: a.id }]); // the backstop's own bare change, nothing notified
      } finally {
        await live.close();
      }
    }, 30_000);
  });
}
