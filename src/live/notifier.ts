// Wakes live readers. ONE listener connection per instance receives the changes that
// transactions notify on commit (store/change.ts: a stream's new tail and closed state,
// and small appended data); an in-process map finds the waiters of each stream. Change
// hooks (the live-read cache, SSE hubs) see each change before the waiters wake.
//
// Two safety nets, both O(1) per instance rather than per reader:
//  - after the listener (re)connects, every waiter is woken (notifications may be lost);
//  - every `backstopMs`, one query reads the state of all streams that have waiters and
//    wakes those whose state differs from what their waiters last saw, so a dead or
//    silently broken listener costs latency, never correctness.
import { type Db, sql } from "../store/db.ts";
import { type Change, parseNotification, type StreamState } from "../store/change.ts";
import { pgArray } from "../store/pg-array.ts";
import { log } from "../observability/log.ts";
import { backstopWakeups, listenerReconnects, notificationsReceived } from "../observability/metrics.ts";

export interface Waiter {
  /** Resolves true when woken, false when `ms` passed (or `signal` aborted) first. */
  wait(ms: number, signal?: AbortSignal): Promise<boolean>;
  cancel(): void;
  /**
   * A read that starts after this tick sees everything that woke (or could have woken)
   * this waiter: the registration tick, then the tick of the latest wake.
   */
  readonly since: number;
}

/** What a waiter knows of its stream; the backstop wakes it when the table says otherwise. */
export type Seen = StreamState;

interface Entry {
  wake: () => void;
  seen?: Seen;
  /** Woken before the others of its stream (SSE: one cheap write each). */
  first: boolean;
}

/** Runs for every notified change (store/change.ts), before the stream's waiters wake. */
export type ChangeHook = (change: Change) => void;

const PING = "ping";
const later: (f: () => void) => void =
  (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ?? ((f) => setTimeout(f, 0));
const BACKSTOP_BATCH = 5_000;

export class Notifier {
  private readonly waiters = new Map<number, Set<Entry>>();
  private unlisten?: () => Promise<void>;
  private pingTimer?: ReturnType<typeof setInterval>;
  private backstopTimer?: ReturnType<typeof setInterval>;
  private lastHeard = 0;
  private listening = false;
  private clock = 0;
  private readonly changeHooks: ChangeHook[] = [];
  private readonly resetHooks: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly backstopMs = 5_000,
    private readonly pingMs = 10_000,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(
      this.channel,
      (payload) => this.onNotify(payload),
      () => {
        // (Re)connected: anything notified while we were away is lost, so caches reset and
        // every waiter re-checks.
        if (this.lastHeard > 0) listenerReconnects.inc();
        this.listening = true;
        this.lastHeard = Date.now();
        for (const h of this.resetHooks) h();
        this.wakeAll();
      },
    );
    // A quiet listener may be dead without knowing it: ping ourselves through Postgres.
    this.pingTimer = setInterval(() => {
      this.db.rows(sql`SELECT pg_notify(${this.channel}, ${PING})`).catch(() => {});
    }, this.pingMs);
    this.backstopTimer = setInterval(() => {
      this.backstop().catch(() => {});
    }, this.backstopMs);
    for (const t of [this.pingTimer, this.backstopTimer]) (t as { unref?: () => void }).unref?.();
  }

  /** Healthy when the listener is up and has heard from Postgres recently. */
  get healthy(): boolean {
    return this.listening && Date.now() - this.lastHeard < this.pingMs * 3;
  }

  get waiterCount(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  hasWaiters(streamId: number): boolean {
    return this.waiters.has(streamId);
  }

  async stop(): Promise<void> {
    clearInterval(this.pingTimer);
    clearInterval(this.backstopTimer);
    this.listening = false;
    await this.unlisten?.().catch(() => {});
    this.wakeAll();
  }

  /** Runs before the waiters of a changed stream are woken (cache invalidation). */
  onChange(hook: ChangeHook): void {
    this.changeHooks.push(hook);
  }

  /** Runs when notifications may have been missed (listener reconnect). */
  onReset(hook: () => void): void {
    this.resetHooks.push(hook);
  }

  /** Logical time: bumped by registrations, wake-ups and shared reads (live/shared-reads.ts). */
  tick(): number {
    return ++this.clock;
  }

  /**
   * Registers interest in a stream before the caller's final tail check (no lost
   * wake-ups). `seen` is the state the caller acts on, for the backstop to compare.
   * `first` waiters are woken before the rest of their stream's: an SSE reader's wake-up
   * ends in one socket write, while a long-poll's ends a response and brings a new request,
   * so writing every SSE event first keeps their latency independent of the long-polls.
   */
  subscribe(streamId: number, seen?: Seen, first = false): Waiter {
    let woken = false;
    let since = this.tick();
    let release: (() => void) | undefined;
    const entry: Entry = {
      seen,
      first,
      wake: () => {
        woken = true;
        since = this.tick();
        release?.();
      },
    };
    let set = this.waiters.get(streamId);
    if (!set) this.waiters.set(streamId, (set = new Set()));
    set.add(entry);
    const cancel = () => {
      const s = this.waiters.get(streamId);
      if (s?.delete(entry) && s.size === 0) this.waiters.delete(streamId);
      release?.();
    };
    return {
      cancel,
      get since() {
        return since;
      },
      wait: (ms, signal) =>
        new Promise<boolean>((resolve) => {
          if (woken || signal?.aborted) return resolve(woken);
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            release = undefined;
            resolve(woken);
          };
          const timer = setTimeout(done, Math.max(0, ms));
          signal?.addEventListener("abort", done);
          release = done;
        }).then((r) => {
          woken = false;
          return r;
        }),
    };
  }

  /** Wakes the waiters of one stream on this instance. */
  wake(streamId: number): void {
    const set = this.waiters.get(streamId);
    if (!set) return;
    this.waiters.delete(streamId);
    const rest: Entry[] = [];
    for (const e of set) {
      if (e.first) e.wake();
      else rest.push(e);
    }
    if (rest.length === 0) return;
    // With first waiters, the others wake a turn later: their continuations would
    // otherwise run (and their responses go out) before the first ones get anywhere.
    if (rest.length < set.size) later(() => rest.forEach((e) => e.wake()));
    else for (const e of rest) e.wake();
  }

  wakeAll(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }

  /** One query for every stream with waiters; wakes the waiters whose view is stale. */
  async backstop(): Promise<void> {
    const ids = [...this.waiters.keys()];
    for (let i = 0; i < ids.length; i += BACKSTOP_BATCH) {
      const batch = ids.slice(i, i + BACKSTOP_BATCH);
      const rows = await this.db.rows<{ id: unknown; tail: unknown; closed: boolean; gone: boolean }>(sql`
        SELECT s.id, s.tail, s.closed, (s.deleted_at IS NOT NULL OR s.path IS NULL) AS gone
        FROM ds_streams s WHERE s.id = ANY(${pgArray(batch)}::int8[])`);
      const state = new Map(rows.map((r) => [Number(r.id), r]));
      for (const id of batch) {
        const row = state.get(id);
        const set = this.waiters.get(id);
        if (!set) continue;
        for (const e of [...set]) {
          const stale =
            !row || row.gone || !e.seen || Number(row.tail) !== e.seen.tail || Boolean(row.closed) !== e.seen.closed;
          if (stale) {
            backstopWakeups.inc();
            this.runHooks({ id });
            set.delete(e);
            e.wake();
          }
        }
        if (set.size === 0) this.waiters.delete(id);
      }
    }
  }

  private onNotify(payload: string): void {
    this.lastHeard = Date.now();
    if (payload === PING) return;
    notificationsReceived.inc();
    for (const change of parseNotification(payload)) {
      this.runHooks(change);
      this.wake(change.id);
    }
  }

  /** A failing hook must not cost other hooks, or any waiter, its wake-up. */
  private runHooks(change: Change): void {
    for (const h of this.changeHooks) {
      try {
        h(change);
      } catch (err) {
        log.error({ err }, "change hook failed");
      }
    }
  }
}
