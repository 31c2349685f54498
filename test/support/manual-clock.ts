// A clock that moves only when a test says so (src/lib/clock.ts): timers fire in due order
// inside advance(), so lease and due-time logic is tested without sleeping.
import type { Clock, TimerHandle } from "../../src/lib/clock.ts";

export class ManualClock implements Clock {
  private at = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; f: () => void }>();

  now(): number {
    return this.at;
  }

  setTimeout(f: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { due: this.at + Math.max(0, ms), f });
    return id;
  }

  clearTimeout(t: TimerHandle): void {
    this.timers.delete(t as number);
  }

  /** Timers not fired yet. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time on by `ms`, firing each timer that comes due, in order, at its due time. */
  advance(ms: number): void {
    const end = this.at + ms;
    for (;;) {
      let next: [number, { due: number; f: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= end && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.at = next[1].due;
      next[1].f();
    }
    this.at = end;
  }
}
