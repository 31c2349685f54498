// The instance's clock for timers that only decide when to look (subscription leases, wake
// due times): injectable, so tests move time instead of sleeping (test/support/manual-clock.ts).
// Deadlines themselves are compared in SQL with clock_timestamp().

export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds on a monotonic scale (performance.now() for the system clock). */
  now(): number;
  /** Runs `f` after `ms`; the timer never keeps the process alive. */
  setTimeout(f: () => void, ms: number): TimerHandle;
  clearTimeout(t: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(f, ms) {
    const t = setTimeout(f, ms);
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};
