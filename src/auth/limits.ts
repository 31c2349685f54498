// In-process limits (PROTOCOL 12.5). They hold per instance: with N instances behind a load
// balancer a principal may reach N times a rate; a proxy in front can enforce a global one.

/** Token bucket per key: `rate` requests a second on average, bursts up to `burst`. */
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();
  private sweep: ReturnType<typeof setInterval>;

  constructor(
    private rate: number,
    private burst: number,
    private now: () => number = () => performance.now(),
  ) {
    // A full bucket carries no information: forget it, so idle clients cost no memory.
    this.sweep = setInterval(() => this.forgetFull(), 60_000);
    (this.sweep as { unref?: () => void }).unref?.();
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }

  private forgetFull(): void {
    const t = this.now();
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    }
  }

  close(): void {
    clearInterval(this.sweep);
  }
}

/**
 * The per-principal cap of a Gate: the setting when given, else with auth on a quarter of the
 * instance's cap (issue 25: one token's slow bodies held all APPENDS_IN_FLIGHT_MAX slots and
 * every other token got 429). A quarter still lets one principal use 2,500 appends in flight
 * and 5,000 live reads at the defaults, while at least four must act together to fill the
 * instance. Without auth the principal is a client address, so no default share: clients
 * behind one proxy or NAT would share it.
 */
export function principalShare(setting: number | undefined, totalMax: number, authEnabled: boolean): number {
  if (setting !== undefined) return setting;
  if (!authEnabled || totalMax === 0) return 0;
  return Math.max(1, Math.floor(totalMax / 4));
}

/** Counts things held at once (live reads, appends in flight), per key and in total. */
export class Gate {
  private perKey = new Map<string, number>();
  total = 0;

  /** `perKeyMax` / `totalMax` of 0 mean no limit. */
  constructor(
    readonly perKeyMax: number,
    private totalMax: number,
  ) {}

  /** A release function when under both caps, else which cap was hit. */
  tryAcquire(key: string): (() => void) | "key" | "total" {
    if (this.totalMax > 0 && this.total >= this.totalMax) return "total";
    const held = this.perKey.get(key) ?? 0;
    if (this.perKeyMax > 0 && held >= this.perKeyMax) return "key";
    this.perKey.set(key, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perKey.get(key) ?? 1) - 1;
      if (n <= 0) this.perKey.delete(key);
      else this.perKey.set(key, n);
    };
  }
}
