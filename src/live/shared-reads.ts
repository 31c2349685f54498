// Reads shared by live readers. When one append wakes a thousand readers of a stream, they
// should cost one stream look-up and one range read, not a thousand of each.
//  - fresh(): single-flight look-up of a stream row. A caller joins a look-up only if it
//    started after the caller's `since` tick (see Notifier.subscribe), so a joined result
//    always reflects every append that could have woken the caller.
//  - read(): single-flight range read. Stored data never changes by position, so the same
//    (stream, from, tail, cap) always yields the same bytes and can be shared freely.
import type { Change } from "../store/streams/change.ts";
import type { ReadResult } from "../store/streams/chunks.ts";
import type { Store } from "../store/index.ts";
import type { StreamRecord } from "../store/streams/records.ts";
import type { ChangeHook, Notifier } from "./notifier.ts";
import type { StreamCache } from "./stream-cache.ts";

const RECENT_MAX = 1024;

interface InFlight<T> {
  started: number;
  promise: Promise<T>;
}

export class SharedReads implements ChangeHook {
  private readonly lookups = new Map<number, InFlight<StreamRecord | undefined>>();
  private readonly reads = new Map<string, Promise<ReadResult>>();
  /** Per stream, the data of its latest notified change, if it carried any and had waiters. */
  private readonly recent = new Map<number, { from: number; result: ReadResult; bytes: number }>();

  constructor(
    private readonly store: Store,
    private readonly notifier: Notifier,
    /** Stream rows for live look-ups, kept current by notifications (stream-cache.ts). */
    private readonly cache: StreamCache,
  ) {}

  /**
   * A change hook: keeps the data a change notification carried, for the readers it is
   * about to wake: they read exactly that range (from the previous tail to the new one),
   * so they need no query. Only streams with waiters on this instance are kept, and only
   * the latest.
   */
  applyChange(c: Change): void {
    this.recent.delete(c.id);
    if (!c.data || !c.state || !this.notifier.hasWaiters(c.id)) return;
    if (this.recent.size >= RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
    const bytes = c.data.units.reduce((n, u) => n + u.byteLength, 0);
    this.recent.set(c.id, { from: c.data.from, bytes, result: { units: c.data.units, next: c.state.tail } });
  }

  /** Stream look-up for a live read (cached; see stream-cache.ts). */
  lookup(path: string): Promise<StreamRecord | undefined> {
    return this.cache.lookup(path);
  }

  /** The same look-up straight from the table, dropping any cached entry first. */
  lookupFresh(path: string): Promise<StreamRecord | undefined> {
    this.cache.forget(path);
    return this.cache.lookup(path);
  }

  /**
   * The state of `s`'s stream for a reader whose waiter has tick `since`: from the cache
   * when it holds the stream (it has taken over every processed notification, including
   * the one that woke the reader), else a shared look-up.
   */
  current(s: StreamRecord, since: number): StreamRecord | undefined | Promise<StreamRecord | undefined> {
    return this.cache.current(s) ?? this.fresh(s.id, since);
  }

  fresh(streamId: number, since: number): Promise<StreamRecord | undefined> {
    const current = this.lookups.get(streamId);
    if (current && current.started > since) return current.promise;
    const started = this.notifier.tick();
    const entry: InFlight<StreamRecord | undefined> = {
      started,
      promise: this.store.findById(streamId).then((r) => {
        if (r) this.cache.fill(r, started);
        return r;
      }),
    };
    this.lookups.set(streamId, entry);
    const clear = () => {
      if (this.lookups.get(streamId) === entry) this.lookups.delete(streamId);
    };
    entry.promise.then(clear, clear);
    return entry.promise;
  }

  read(stream: StreamRecord, from: number, maxBytes: number): Promise<ReadResult> {
    const r = this.recent.get(stream.id);
    if (r && r.from === from && r.result.next === stream.tail && r.bytes <= maxBytes) return Promise.resolve(r.result);
    const key = `${stream.id}:${from}:${stream.tail}:${maxBytes}`;
    const current = this.reads.get(key);
    if (current) return current;
    const promise = this.store.read(stream, from, maxBytes);
    this.reads.set(key, promise);
    const clear = () => this.reads.delete(key);
    promise.then(clear, clear);
    return promise;
  }
}
