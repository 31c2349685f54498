// The first stage of the wake pipeline (README: one webhook delivery): committed appends
// in, batches of stream keys that need a wake statement out, handed to the deliverer
// (Deliverer.wakeStreams), which starts and claims the wakes in one statement.
// Each instance keeps the set of explicitly linked stream keys and the glob patterns
// (refreshed whenever a subscriptions notification says links changed), so an append to a
// stream no subscription follows costs one set look-up and one regex test, however many
// streams other subscriptions follow. An append to a stream whose every follower is busy
// (busy.ts: its wake is being delivered here, or not due yet) needs no statement at all; one
// whose followers' wakes wait here for a send slot is held back until they are claimed.
// Nothing flows back: the trigger reads the busy ledger and never calls the deliverer's state.
import type { FailureReporter } from "../observability/background.ts";
import { GlobSet } from "../protocol/glob.ts";
import { later } from "../runtime/later.ts";
import type { SubscriptionStore } from "../store/subscriptions/index.ts";
import { type BusyLedger, WAIT_HOLD_MS } from "./busy.ts";
import type { TimerHandle } from "../lib/clock.ts";

/** Where a batch of keys goes: the wake statement and the sends it claims. */
export type WakeStreams = (keys: string[]) => Promise<void>;

export class WakeTrigger {
  private globs = new GlobSet([]);
  /** Subscriptions by explicitly linked stream key and by glob pattern. */
  private byKey = new Map<string, string[]>();
  private byPattern = new Map<string, string[]>();
  private subscribers = new Map<string, string[]>();
  private pending = new Set<string>();
  /** Keys whose subscriptions' wakes wait here for a send slot (BusyLedger `waiting`). */
  private held = new Set<string>();
  private heldTimer?: TimerHandle;
  private flushing?: Promise<void>;
  private reloading?: Promise<void>;
  private reloadAgain = false;

  constructor(
    private readonly store: Pick<SubscriptionStore, "loadTriggerSet" | "linkCreatedStream">,
    private readonly busy: BusyLedger,
    private readonly wake: WakeStreams,
    private readonly failed: FailureReporter,
  ) {
    busy.onWaitEnded(() => this.releaseHeld());
  }

  /** Reloads the trigger set; concurrent calls coalesce into one more load. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        const set = await this.store.loadTriggerSet();
        this.byKey = groupBy(set.keys);
        this.byPattern = groupBy(set.patterns);
        this.globs = new GlobSet(this.byPattern.keys());
        this.subscribers = new Map();
        // A subscription deleted (and perhaps made again) since: its wake is not ours to know.
        this.busy.forgetDueTimes();
      } while (this.reloadAgain);
    })().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  follows(key: string): boolean {
    return this.byKey.has(key) || this.globs.matches(key);
  }

  /** A committed append (or close) on `key`. */
  appended(key: string): void {
    if (!this.follows(key)) return;
    const state = this.busy.size > 0 ? this.busy.state(this.subscribersOf(key)) : "free";
    if (state === "busy") return;
    if (state === "hold") return this.hold(key);
    this.queue(key);
  }

  /** Holds a key back while its subscriptions' wakes wait here for a send slot, WAIT_HOLD_MS at most. */
  private hold(key: string): void {
    this.held.add(key);
    this.lookAtHeldLater();
  }

  private lookAtHeldLater(): void {
    if (this.heldTimer !== undefined) return;
    this.heldTimer = this.busy.clock.setTimeout(() => {
      this.heldTimer = undefined;
      this.releaseHeld();
    }, WAIT_HOLD_MS + 1);
  }

  /**
   * Held keys whose subscriptions are now being delivered here need nothing more (the end of a
   * delivery looks for pending work); those no longer waiting go to a wake statement.
   */
  private releaseHeld(): void {
    for (const key of this.held) {
      const state = this.busy.state(this.subscribersOf(key));
      if (state === "hold") continue;
      this.held.delete(key);
      if (state === "free") this.queue(key);
    }
    if (this.held.size > 0) this.lookAtHeldLater();
  }

  private subscribersOf(key: string): string[] {
    let subs = this.subscribers.get(key);
    if (subs === undefined) {
      subs = [...(this.byKey.get(key) ?? []), ...this.globs.matching(key).flatMap((p) => this.byPattern.get(p) ?? [])];
      if (this.subscribers.size >= 10_000) this.subscribers.clear();
      this.subscribers.set(key, subs);
    }
    return subs;
  }

  /**
   * A stream was created: every glob subscription it matches links it with the cursor
   * before its first data (`fromPos`), before the creation is answered, so the link cannot
   * be lost; waking them happens off the response path. This always asks the database:
   * a subscription made on another instance a moment ago may not be in our set yet.
   */
  async created(key: string, fromPos: number, hasData: boolean): Promise<void> {
    const linked = await this.store.linkCreatedStream(key, fromPos);
    if (linked > 0 || hasData) this.queue(key);
  }

  private queue(key: string): void {
    this.pending.add(key);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing) return;
    // After the I/O callbacks of this turn: the appends of one group commit resolve together
    // and share one statement. (A zero timeout waited about a millisecond more on Bun.)
    this.flushing = new Promise<void>((r) => later(r))
      .then(async () => {
        while (this.pending.size > 0) {
          const keys = [...this.pending];
          this.pending.clear();
          await this.wake(keys);
        }
      })
      .catch((err) => this.failed("subscription wake after append (the backstop retries)", err))
      .finally(() => {
        this.flushing = undefined;
        if (this.pending.size > 0) this.schedule();
      });
  }

  /** Resolves when no wake statement is running or queued (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.flushing || this.reloading) await (this.flushing ?? this.reloading);
  }
}

function groupBy(pairs: [string, string][]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, id] of pairs) out.set(k, [...(out.get(k) ?? []), id]);
  return out;
}
