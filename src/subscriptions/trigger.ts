// Wakes after appends, off the response path. Each instance keeps the set of explicitly
// linked stream keys and the glob patterns (refreshed whenever a subscriptions notification
// says links changed), so an append to a stream no subscription follows costs one set
// look-up and one regex test, however many streams other subscriptions follow. Appends to
// followed streams are collected and woken with one statement per round trip.
import type { Db } from "../store/db.ts";
import { linkCreatedStream, loadTriggerSet } from "../store/subscriptions.ts";
import { wakeForStreams } from "../store/subscription-wakes.ts";
import { GlobSet } from "./glob.ts";

export class WakeTrigger {
  private keys = new Set<string>();
  private globs = new GlobSet([]);
  private pending = new Set<string>();
  private flushing?: Promise<void>;
  private reloading?: Promise<void>;
  private reloadAgain = false;
  /** Runs after a flush started wakes (this instance's deliverer looks at once). */
  onWoke: () => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly channel: string,
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
        this.keys = new Set(set.keys);
        this.globs = new GlobSet(set.patterns);
      } while (this.reloadAgain);
    })().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  follows(key: string): boolean {
    return this.keys.has(key) || this.globs.matches(key);
  }

  /** A committed append (or close) on `key`. */
  appended(key: string): void {
    if (!this.follows(key)) return;
    this.pending.add(key);
    this.schedule();
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
          if ((await wakeForStreams(this.db, this.channel, keys)) > 0) this.onWoke();
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
