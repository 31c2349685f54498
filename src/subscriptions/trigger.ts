// Wakes after appends, off the response path. Each instance keeps the set of explicitly
// linked stream keys and the glob patterns (refreshed whenever a subscriptions notification
// says links changed), so an append to a stream no subscription follows costs one set
// look-up and one regex test, however many streams other subscriptions follow. Appends to
// followed streams are collected and woken with one statement per round trip.
// While every subscription that follows a stream is certainly not idle, an append to it
// needs no statement at all: while this instance delivers a wake of it (every end of a wake
// looks for pending work: deliveryFinished starts the next wake, an end that leaves the
// subscription idle looks once more afterwards: Deliverer.ended), and while a wake of it is
// not due yet (SUBSCRIPTION_WAKE_INTERVAL_MS: nobody can deliver or end it before then, and
// its delivery's snapshot is taken after the append).
import { type FailureReporter, reportFailures } from "../observability/background.ts";
import type { Db } from "../store/driver/db.ts";
import { linkCreatedStream, loadTriggerSet } from "../store/subscriptions/subscriptions.ts";
import { wakeForStreams } from "../store/subscriptions/wakes.ts";
import type { Woken } from "../store/subscriptions/sql.ts";
import { GlobSet } from "./glob.ts";

export class WakeTrigger {
  private globs = new GlobSet([]);
  /** Subscriptions by explicitly linked stream key and by glob pattern. */
  private byKey = new Map<string, string[]>();
  private byPattern = new Map<string, string[]>();
  private subscribers = new Map<string, string[]>();
  /**
   * Subscriptions that cannot become idle before a deadline (performance.now() ms): Infinity
   * while this instance delivers their wake, the due time of a wake not due yet.
   */
  private readonly quiet = new Map<string, number>();
  private pending = new Set<string>();
  private flushing?: Promise<void>;
  private reloading?: Promise<void>;
  private reloadAgain = false;
  /** Runs for each wake a flush started, sent at `sentAt` (this instance's deliverer delivers it when due: Deliverer.woke). */
  onWoke: (w: Woken, sentAt: number) => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly intervalMs = 0,
    private readonly failed: FailureReporter = reportFailures(),
  ) {}

  /** Reloads the trigger set; concurrent calls coalesce into one more load. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        const set = await loadTriggerSet(this.db);
        this.byKey = groupBy(set.keys);
        this.byPattern = groupBy(set.patterns);
        this.globs = new GlobSet(this.byPattern.keys());
        this.subscribers = new Map();
        // A subscription deleted (and perhaps made again) since: its wake is not ours to know.
        for (const [id, until] of this.quiet) if (until !== Infinity) this.quiet.delete(id);
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
    if (this.quiet.size > 0 && this.allQuiet(this.subscribersOf(key))) return;
    this.pending.add(key);
    this.schedule();
  }

  /** This instance claimed a wake of `id` and is delivering it. */
  delivering(id: string): void {
    this.quiet.set(id, Infinity);
  }

  /** The delivery of `id` ended. */
  delivered(id: string): void {
    this.quiet.delete(id);
  }

  /**
   * A wake was started by a statement sent at `sentAt` (performance.now()), due `dueInMs`
   * after the statement ran, so not before `sentAt + dueInMs` on this clock. Only a webhook
   * subscription certainly stays busy until then: a pull-wake worker may claim (and end) a
   * wake before it is due.
   */
  woke(w: Woken, sentAt: number): void {
    const until = sentAt + w.dueInMs - QUIET_MARGIN_MS;
    if (w.type === "webhook" && w.dueInMs > QUIET_MARGIN_MS && !((this.quiet.get(w.id) ?? 0) >= until)) this.quiet.set(w.id, until);
  }

  private allQuiet(subs: string[]): boolean {
    if (subs.length === 0) return false;
    const now = performance.now();
    for (const id of subs) {
      const until = this.quiet.get(id);
      if (until === undefined) return false;
      if (until <= now) {
        this.quiet.delete(id);
        return false;
      }
    }
    return true;
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
    const linked = await linkCreatedStream(this.db, key, fromPos);
    if (linked > 0 || hasData) {
      this.pending.add(key);
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((r) => setTimeout(r, 0))
      .then(async () => {
        while (this.pending.size > 0) {
          const keys = [...this.pending];
          this.pending.clear();
          const sentAt = performance.now();
          for (const w of await wakeForStreams(this.db, keys, this.intervalMs)) this.onWoke(w, sentAt);
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

/** Slack for the two clocks' rates and timer jitter: a due time is trusted up to this much before it. */
const QUIET_MARGIN_MS = 5;

function groupBy(pairs: [string, string][]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, id] of pairs) out.set(k, [...(out.get(k) ?? []), id]);
  return out;
}
