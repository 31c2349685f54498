// Which subscriptions are certainly not idle, and until when, as this instance knows it:
// written by the deliverer (it knows what it delivers and what it woke), read by the
// trigger (an append to a stream only such subscriptions follow needs no wake statement).
// A subscription is busy while this instance delivers a wake of it (every end of a wake
// looks for pending work: deliveryFinished starts the next wake, an end that leaves it idle
// looks once more afterwards), and while a webhook wake of it is not due yet
// (SUBSCRIPTION_WAKE_INTERVAL_MS: nobody can deliver or end it before then, and its
// delivery's snapshot is taken after the append). Once such a wake is due and waits for a
// send slot here, appends wait for its claim instead (`waiting`).
import { type Clock, systemClock } from "../lib/clock.ts";
import type { Woken } from "../store/subscriptions/index.ts";

/** Slack for the two clocks' rates and timer jitter: a due time is trusted up to this much before it. */
const MARGIN_MS = 5;

/**
 * How long a webhook wake started here, once due, holds appends' wake statements back at most
 * while it waits to be claimed here (see `waiting`).
 */
export const WAIT_HOLD_MS = 1_000;

/** What the trigger may do about an append: nothing ("busy"), wait ("hold"), or send a wake statement ("free"). */
export type BusyState = "busy" | "hold" | "free";

export class BusyLedger {
  /** Subscription id -> busy until (clock ms): Infinity while delivering. */
  private readonly until = new Map<string, number>();
  /**
   * Subscription id -> until (clock ms): a webhook wake started here that is due (or comes due)
   * waits to be claimed here once a send slot frees (the instance's or its host's cap; under
   * load, most of a second). It is not idle, but not certainly busy either: another instance
   * may claim and end it. An append then waits ("hold") rather than sending a wake statement
   * that would find the wake still waiting: until this instance claims it (then the append
   * needs nothing, as for any delivery here), or until this time (then it sends one, late).
   */
  private readonly waiting = new Map<string, number>();
  private waitEnded: () => void = () => {};

  constructor(readonly clock: Clock = systemClock) {}

  get size(): number {
    return this.until.size + this.waiting.size;
  }

  /** Called when a waiting wake is claimed here (the trigger looks at what it held back). */
  onWaitEnded(f: () => void): void {
    this.waitEnded = f;
  }

  /** This instance claimed a wake of `id` and is delivering it. */
  delivering(id: string): void {
    this.until.set(id, Infinity);
    if (this.waiting.delete(id)) this.waitEnded();
  }

  /** The delivery of `id` ended. */
  delivered(id: string): void {
    this.until.delete(id);
    this.waiting.delete(id);
  }

  /**
   * A wake was started by a statement sent at `sentAt` (clock ms), due `dueInMs` after the
   * statement ran, so not before `sentAt + dueInMs` on this clock. Only a webhook
   * subscription certainly stays busy until then: a pull-wake worker may claim (and end) a
   * wake before it is due.
   */
  woke(w: Woken, sentAt: number): void {
    if (w.type !== "webhook" || this.until.get(w.id) === Infinity) return;
    const until = sentAt + w.dueInMs - MARGIN_MS;
    if (w.dueInMs > MARGIN_MS && !((this.until.get(w.id) ?? 0) >= until)) this.until.set(w.id, until);
    this.waiting.set(w.id, Math.max(until, this.clock.now()) + WAIT_HOLD_MS);
  }

  /**
   * For an append to a stream `ids` follow: "busy" if every one is certainly busy now, else
   * "hold" if each of the others waits here, else "free" (none: "free"). Lapsed entries go.
   */
  state(ids: readonly string[]): BusyState {
    if (ids.length === 0 || this.size === 0) return "free";
    const now = this.clock.now();
    let hold = false;
    for (const id of ids) {
      const until = this.until.get(id);
      if (until !== undefined) {
        if (until > now) continue;
        this.until.delete(id);
      }
      const waits = this.waiting.get(id);
      if (waits === undefined) return "free";
      if (waits <= now) {
        this.waiting.delete(id);
        return "free";
      }
      hold = true;
    }
    return hold ? "hold" : "busy";
  }

  /** Subscriptions changed (one deleted, perhaps made again under its id): due times are forgotten, deliveries in progress stay. */
  forgetDueTimes(): void {
    for (const [id, until] of this.until) if (until !== Infinity) this.until.delete(id);
    this.waiting.clear();
  }
}
