// Stream rows for live reads, cached in process and kept honest by the notifications every
// instance already receives: an append, close or delete anywhere notifies the stream's id,
// and the listener drops the entry before it wakes any waiter. So an entry always reflects
// every change whose notification this instance has processed, which is all a live reader
// needs: it registers its waiter in the same tick it reads the entry, and any later change
// wakes it. When a thousand long-polls come back after an append, they cost one query.
//
// Only live reads use it; catch-up reads go to the table (read-your-writes across
// instances must not depend on notification latency). Streams with a TTL or an expiry
// time are never cached, since they can expire without any notification.
import { type Change, mergeState } from "../store/streams/change.ts";
import type { Store } from "../store/index.ts";
import type { StreamRecord } from "../store/streams/records.ts";
import type { ChangeHook, Notifier } from "./notifier.ts";

const MAX_ENTRIES = 10_000;

export class StreamCache implements ChangeHook {
  private readonly byPath = new Map<string, StreamRecord>();
  private readonly pathById = new Map<number, string>();
  /** Tick of the latest invalidation per stream id, and of the latest full reset. */
  private readonly invalidated = new Map<number, number>();
  private resetAt = 0;
  private readonly inflight = new Map<string, Promise<StreamRecord | undefined>>();

  constructor(
    private readonly store: Store,
    private readonly notifier: Notifier,
  ) {}

  /** The stream at `path` as of every notification processed so far. */
  lookup(path: string): Promise<StreamRecord | undefined> {
    const hit = this.notifier.healthy ? this.byPath.get(path) : undefined;
    if (hit) return Promise.resolve(hit);
    let pending = this.inflight.get(path);
    if (!pending) {
      const started = this.notifier.tick();
      pending = this.store.find(path).then((record) => {
        this.inflight.delete(path);
        if (record && this.cacheable(record, started)) this.put(path, record);
        return record;
      }, (err) => {
        this.inflight.delete(path);
        throw err;
      });
      this.inflight.set(path, pending);
    }
    return pending;
  }

  /** A row read elsewhere (for example after a wake-up) fills the entry, if still current. */
  fill(record: StreamRecord, started: number): void {
    if (record.path && this.cacheable(record, started)) this.put(record.path, record);
  }

  /**
   * The cached state of `s`'s stream, if the cache holds it: as of every notification
   * processed so far, so a reader woken by one of them needs no query.
   */
  current(s: StreamRecord): StreamRecord | undefined {
    const hit = s.path !== null && this.notifier.healthy ? this.byPath.get(s.path) : undefined;
    return hit !== undefined && hit.id === s.id ? hit : undefined;
  }

  /** Drops a path's entry, e.g. when a reader found the cached tail behind its offset. */
  forget(path: string): void {
    const r = this.byPath.get(path);
    if (r) this.pathById.delete(r.id);
    this.byPath.delete(path);
  }

  private cacheable(r: StreamRecord, started: number): boolean {
    // A row read by a query that started before the latest change notification for its
    // stream (or before a reset) may miss that change: never cache it.
    return (
      this.notifier.healthy &&
      r.ttlSeconds === null && r.expiresAt === null && !r.expired && !r.deleted &&
      started > this.resetAt && started > (this.invalidated.get(r.id) ?? 0)
    );
  }

  private put(path: string, r: StreamRecord): void {
    if (this.byPath.size >= MAX_ENTRIES) this.reset();
    this.byPath.set(path, r);
    this.pathById.set(r.id, path);
  }

  /**
   * A notified change (a change hook): with the new state, a cached entry merges it in
   * (only tail and closed change on append and close, the only fields live reads act on);
   * without it, the entry goes. Look-ups that started earlier are refused either way.
   */
  applyChange({ id, state }: Change): void {
    this.invalidated.set(id, this.notifier.tick());
    if (this.invalidated.size > MAX_ENTRIES * 4) this.reset();
    const path = this.pathById.get(id);
    if (path === undefined) return;
    const hit = this.byPath.get(path);
    if (state && hit && hit.id === id) {
      this.byPath.set(path, mergeState(hit, state));
    } else {
      this.byPath.delete(path);
      this.pathById.delete(id);
    }
  }

  /** Notifications may have been missed (a change hook's reset): nothing cached is vouched for. */
  reset(): void {
    this.resetAt = this.notifier.tick();
    this.byPath.clear();
    this.pathById.clear();
    this.invalidated.clear();
  }
}
