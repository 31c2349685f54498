// One timer per lease this instance started or extended (PROTOCOL 7.3: "when a lease
// expires, the server MUST clear the holder and wake token; if pending work remains, it MUST
// schedule another wake"). At the deadline the database decides (its clock is the one the
// lease was set by): ended, or extended meanwhile, in which case the timer is set again for
// the new deadline. The deliverer's tick stays the backstop for an instance that died.
import { type Clock, systemClock, type TimerHandle } from "../lib/clock.ts";

/** Slack after a deadline before asking the database. */
const SLACK_MS = 2;

export class LeaseTimers {
  private readonly timers = new Map<string, TimerHandle>();
  private stopped = false;

  /** `lapse` ends the lease of `id` if it has lapsed; returns the milliseconds left otherwise. */
  constructor(
    private readonly lapse: (id: string) => Promise<number | undefined>,
    private readonly failed: (id: string, err: unknown) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The lease of `id` runs `ms` more. */
  watch(id: string, ms: number): void {
    if (this.stopped) return;
    const old = this.timers.get(id);
    if (old !== undefined) this.clock.clearTimeout(old);
    const t = this.clock.setTimeout(() => {
      this.timers.delete(id);
      if (this.stopped) return;
      this.lapse(id)
        .then((left) => left !== undefined && this.watch(id, left))
        .catch((err) => this.failed(id, err));
    }, Math.max(0, ms) + SLACK_MS);
    this.timers.set(id, t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.timers.clear();
  }
}
