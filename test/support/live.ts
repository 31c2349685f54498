// A database, store and notifier wired the way server.ts wires them (same change hooks, in
// the same order), for tests of live reads below the HTTP layer. close() fails the test when
// a waiter or SSE reader outlived it: a leaked waiter is a reader that would never be woken.
import { Notifier } from "../../src/live/notifier.ts";
import { SharedReads } from "../../src/live/shared-reads.ts";
import { SseHubs } from "../../src/live/sse-hub.ts";
import { StreamCache } from "../../src/live/stream-cache.ts";
import { addChangeHooks } from "../../src/server.ts";
import type { Change } from "../../src/store/streams/change.ts";
import type { Db } from "../../src/store/driver/db.ts";
import { Store, type StoreOptions } from "../../src/store/index.ts";
import { type Backend, backends } from "./backends.ts";
import { Signal } from "./signal.ts";

export interface Live {
  db: Db;
  store: Store;
  notifier: Notifier;
  cache: StreamCache;
  reads: SharedReads;
  hubs: SseHubs;
  /** Every change the notifier applied, in order; `changed` fires after each. */
  changes: Change[];
  changed: Signal;
  /** Stops everything; throws if waiters or SSE readers are left (after up to 2 s). */
  close(): Promise<void>;
}

export interface LiveOptions {
  store?: StoreOptions;
  /** Channel to listen on (default: the store's own). */
  channel?: string;
  backstopMs?: number;
  chunkBytes?: number;
}

export async function openLive(backend: Backend = backends[0], opts: LiveOptions = {}): Promise<Live> {
  const db = await backend.open();
  const store = new Store(db, opts.store);
  const notifier = new Notifier(db, opts.channel ?? store.channel, opts.backstopMs ?? 60_000);
  const cache = new StreamCache(store, notifier);
  const reads = new SharedReads(store, notifier, cache);
  const hubs = new SseHubs(reads, notifier, opts.chunkBytes ?? 1 << 20);
  addChangeHooks(notifier, { store, cache, reads, sse: hubs });
  const changes: Change[] = [];
  const changed = new Signal();
  notifier.addHook({
    applyChange: (c) => {
      changes.push(c);
      changed.notify();
    },
  });
  await notifier.start();
  return {
    db,
    store,
    notifier,
    cache,
    reads,
    hubs,
    changes,
    changed,
    async close() {
      // Waiters end on their own turn (a hub leaves after its last member): allow that.
      const deadline = Date.now() + 2_000;
      while ((notifier.waiterCount > 0 || hubs.readerCount > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const leaked = { waiters: notifier.waiterCount, sseReaders: hubs.readerCount };
      await notifier.stop();
      await store.drained();
      await db.close();
      if (leaked.waiters > 0 || leaked.sseReaders > 0) throw new Error(`leaked live readers: ${JSON.stringify(leaked)}`);
    },
  };
}
