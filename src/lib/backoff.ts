// Exponential backoff with jitter, defined once: the pool's reconnects (store/driver/
// postgres.ts), the listener's re-listen (store/driver/listener.ts) and webhook retries
// (subscriptions/deliver.ts) differ only in their numbers.

export interface Backoff {
  /** The delay before the first retry (attempt 0), doubling per attempt. */
  firstMs: number;
  /** No delay is longer than this (before jitter). */
  maxMs: number;
  /** The delay is scaled by a factor drawn uniformly from [low, high]: instances retrying together spread out. */
  jitter: readonly [low: number, high: number];
}

/** The delay before retry number `attempt` (0 first); `random` in [0, 1). */
export function backoffMs(b: Backoff, attempt: number, random = Math.random()): number {
  const [low, high] = b.jitter;
  return Math.min(b.maxMs, b.firstMs * 2 ** Math.max(0, attempt)) * (low + (high - low) * random);
}
