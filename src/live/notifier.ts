// Wakes live readers. ONE listener connection per instance receives the changes that
// transactions notify on commit (store/streams/change.ts: a stream's new tail and closed state,
// and small appended data); an in-process map finds the waiters of each stream. Change
// hooks (registered in order by server.ts) apply each change before the waiters wake.
//
// Two safety nets, both O(1) per instance rather than per reader:
//  - after the listener (re)connects, every waiter is woken (notifications may be lost);
//  - every `backstopMs`, one query reads the state of all streams that have waiters and
//    wakes those whose state differs from what their waiters last saw, so a dead or
//    silently broken listener costs latency, never correctness.
import { reportFailures } from "../observability/background.ts";
import type { Db } from "../store/driver/db.ts";
import { type Change, parseNotification, sameState, type StreamState } from "../store/streams/change.ts";
import type { Listener } from "../store/driver/listener.ts";
import { streamStates } from "../store/streams/live-state.ts";
import { later } from "../runtime/later.ts";
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

/** Something kept current by change notifications (store/streams/change.ts). */
export interface ChangeHook {
  /** Applies one notified change; runs before the changed stream's waiters wake. */
  applyChange(change: Change): void;
  /** Notifications may have been missed (the listener reconnected): drop what they kept. */
  reset?(): void;
}

const BACKSTOP_BATCH = 5_000;

/** The backstop re-checks on its next round; a failure is logged and counted, not swallowed. */
const failed = reportFailures();

export class Notifier {
  private readonly waiters = new Map<number, Set<Entry>>();
  private listener?: Listener;
  private backstopTimer?: ReturnType<typeof setInterval>;
  private clock = 0;
  private listenedOnce = false;
  private readonly hooks: ChangeHook[] = [];

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly backstopMs = 5_000,
  ) {}

  async start(): Promise<void> {
    // The listener heals itself (store/driver/listener.ts) and calls back after every (re)connect:
    // anything notified while it was away is lost, so caches reset and every waiter re-checks.
    this.listener = await this.db.listen(
      this.channel,
      (payload) => this.onNotify(payload),
      () => {
        if (this.listenedOnce) listenerReconnects.inc();
        this.listenedOnce = true;
        for (const h of this.hooks) h.reset?.();
        this.wakeAll();
      },
    );
    this.backstopTimer = setInterval(() => {
      this.backstop().catch((err) => failed("live backstop", err));
    }, this.backstopMs);
    (this.backstopTimer as { unref?: () => void }).unref?.();
  }

  /** Healthy when the listener is connected and its last heartbeat came back in time. */
  get healthy(): boolean {
    return this.listener?.healthy ?? false;
  }

  /** How often the listener had to reconnect (operators, tests). */
  get reconnects(): number {
    return this.listener?.reconnects ?? 0;
  }

  get waiterCount(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /** Waiters on one stream that are not SSE hubs (long-polls), for the admin view. */
  longPollsOn(streamId: number): number {
    let n = 0;
    for (const e of this.waiters.get(streamId) ?? []) if (!e.first) n++;
    return n;
  }

  hasWaiters(streamId: number): boolean {
    return this.waiters.has(streamId);
  }

  async stop(): Promise<void> {
    clearInterval(this.backstopTimer);
    await this.listener?.close().catch(() => {});
    this.wakeAll();
  }

  /** Adds a change hook; hooks run in the order they were added (server.ts says why). */
  addHook(hook: ChangeHook): void {
    this.hooks.push(hook);
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
      const state = await streamStates(this.db, batch);
      for (const id of batch) {
        const row = state.get(id);
        const set = this.waiters.get(id);
        if (!set) continue;
        for (const e of [...set]) {
          const stale = !row || !e.seen || !sameState(row, e.seen);
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
    notificationsReceived.inc();
    for (const change of parseNotification(payload)) {
      this.runHooks(change);
      this.wake(change.id);
    }
  }

  /** A failing hook must not cost other hooks, or any waiter, its wake-up. */
  private runHooks(change: Change): void {
    for (const h of this.hooks) {
      try {
        h.applyChange(change);
      } catch (err) {
        log.error({ err }, "change hook failed");
      }
    }
  }
}
