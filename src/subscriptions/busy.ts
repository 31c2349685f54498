// Which subscriptions are certainly not idle, and until when, as this instance knows it:
// written by the deliverer (it knows what it delivers and what it woke), read by the
// trigger (an append to a stream only such subscriptions follow needs no wake statement).
// A subscription is busy while this instance delivers a wake of it (every end of a wake
// looks for pending work: deliveryFinished starts the next wake, an end that leaves it idle
// looks once more afterwards), and while a webhook wake of it is not due yet
// (SUBSCRIPTION_WAKE_INTERVAL_MS: nobody can deliver or end it before then, and its
// delivery's snapshot is taken after the append).
import { type Clock, systemClock } from "../lib/clock.ts";
import type { Woken } from "../store/subscriptions/index.ts";

/** Slack for the two clocks' rates and timer jitter: a due time is trusted up to this much before it. */
const MARGIN_MS = 5;

export class BusyLedger {
  /** Subscription id -> busy until (clock ms): Infinity while delivering. */
  private readonly until = new Map<string, number>();

  constructor(readonly clock: Clock = systemClock) {}

  get size(): number {
    return this.until.size;
  }

  /** This instance claimed a wake of `id` and is delivering it. */
  delivering(id: string): void {
    this.until.set(id, Infinity);
  }

  /** The delivery of `id` ended. */
  delivered(id: string): void {
    this.until.delete(id);
  }

  /**
   * A wake was started by a statement sent at `sentAt` (clock ms), due `dueInMs` after the
   * statement ran, so not before `sentAt + dueInMs` on this clock. Only a webhook
   * subscription certainly stays busy until then: a pull-wake worker may claim (and end) a
   * wake before it is due.
   */
  woke(w: Woken, sentAt: number): void {
    const until = sentAt + w.dueInMs - MARGIN_MS;
    if (w.type === "webhook" && w.dueInMs > MARGIN_MS && !((this.until.get(w.id) ?? 0) >= until)) this.until.set(w.id, until);
  }

  /** Whether every one of `ids` is busy now (none: false). */
  allBusy(ids: readonly string[]): boolean {
    if (ids.length === 0 || this.until.size === 0) return false;
    const now = this.clock.now();
    for (const id of ids) {
      const until = this.until.get(id);
      if (until === undefined) return false;
      if (until <= now) {
        this.until.delete(id);
        return false;
      }
    }
    return true;
  }

  /** Subscriptions changed (one deleted, perhaps made again under its id): due times are forgotten, deliveries in progress stay. */
  forgetDueTimes(): void {
    for (const [id, until] of this.until) if (until !== Infinity) this.until.delete(id);
  }
}
