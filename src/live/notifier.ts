// Wakes live readers. ONE listener connection per instance receives the stream ids that
// append transactions notify after commit; an in-process map finds the waiters of each
// stream. A notification is only a hint: woken readers re-read the table.
//
// Two safety nets, both O(1) per instance rather than per reader:
//  - after the listener (re)connects, every waiter is woken (notifications may be lost);
//  - every `backstopMs`, one query reads the state of all streams that have waiters and
//    wakes those whose state differs from what their waiters last saw, so a dead or
//    silently broken listener costs latency, never correctness.
import { type Db, sql } from "../store/db.ts";
import { pgArray } from "../store/pg-array.ts";

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
export interface Seen {
  tail: number;
  closed: boolean;
}

interface Entry {
  wake: () => void;
  seen?: Seen;
}

const PING = "ping";
const BACKSTOP_BATCH = 5_000;

export class Notifier {
  private readonly waiters = new Map<number, Set<Entry>>();
  private unlisten?: () => Promise<void>;
  private pingTimer?: ReturnType<typeof setInterval>;
  private backstopTimer?: ReturnType<typeof setInterval>;
  private lastHeard = 0;
  private listening = false;
  private clock = 0;
  private readonly changeHooks: ((id: number) => void)[] = [];
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

  async stop(): Promise<void> {
    clearInterval(this.pingTimer);
    clearInterval(this.backstopTimer);
    this.listening = false;
    await this.unlisten?.().catch(() => {});
    this.wakeAll();
  }

  /** Runs before the waiters of a changed stream are woken (cache invalidation). */
  onChange(hook: (id: number) => void): void {
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
   */
  subscribe(streamId: number, seen?: Seen): Waiter {
    let woken = false;
    let since = this.tick();
    let release: (() => void) | undefined;
    const entry: Entry = {
      seen,
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
    for (const e of set) e.wake();
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
            for (const h of this.changeHooks) h(id);
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
    for (const part of payload.split(",")) {
      const id = Number(part);
      for (const h of this.changeHooks) h(id);
      this.wake(id);
    }
  }
}
