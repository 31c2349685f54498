// Wakes after appends, off the response path. Each instance keeps the set of explicitly
// linked stream keys and the glob patterns (refreshed whenever a subscriptions notification
// says links changed), so an append to a stream no subscription follows costs one set
// look-up and one regex test, however many streams other subscriptions follow. Appends to
// followed streams are collected and woken with one statement per round trip.
// While this instance is delivering a wake of every subscription that follows a stream,
// an append to it needs no statement at all: the delivery's end starts the next wake if
// anything is pending (deliveryFinished), and appends seen meanwhile mark the subscription
// so that any other end (no snapshot ack, a race with that statement) checks once more.
import type { Db } from "../store/db.ts";
import { linkCreatedStream, loadTriggerSet } from "../store/subscriptions.ts";
import { wakeForStreams } from "../store/subscription-wakes.ts";
import { GlobSet } from "./glob.ts";

export class WakeTrigger {
  private globs = new GlobSet([]);
  /** Subscriptions by explicitly linked stream key and by glob pattern. */
  private byKey = new Map<string, string[]>();
  private byPattern = new Map<string, string[]>();
  private subscribers = new Map<string, string[]>();
  /** Subscriptions whose wake this instance is delivering -> appends seen meanwhile. */
  private readonly busy = new Map<string, boolean>();
  private pending = new Set<string>();
  private flushing?: Promise<void>;
  private reloading?: Promise<void>;
  private reloadAgain = false;
  /** Runs after a flush started wakes (this instance's deliverer looks at once). */
  onWoke: () => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    /** Tags this instance's "due" notifications: its deliverer looks at once anyway (onWoke). */
    private readonly instanceId?: string,
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
    if (this.busy.size > 0) {
      const subs = this.subscribersOf(key);
      if (subs.length > 0 && subs.every((id) => this.busy.has(id))) {
        for (const id of subs) this.busy.set(id, true);
        return;
      }
    }
    this.pending.add(key);
    this.schedule();
  }

  /** This instance claimed a wake of `id` and is delivering it. */
  delivering(id: string): void {
    this.busy.set(id, false);
  }

  /** The delivery of `id` ended; true if appends to its streams skipped their wake statement meanwhile. */
  delivered(id: string): boolean {
    const seen = this.busy.get(id) === true;
    this.busy.delete(id);
    return seen;
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
          if ((await wakeForStreams(this.db, this.channel, keys, this.instanceId)) > 0) this.onWoke();
        }
      })
      .catch((err) => console.error("subscriptions: wake after append failed (the backstop retries)", err))
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
