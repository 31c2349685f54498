// The second stage of the wake pipeline: claims wakes and sends them (deliver.ts), with no
// row lock held during the send; across all instances one delivers a wake at a time, and if
// it dies another takes over once the delivery lease lapses. Wakes come in three ways:
// batches of appended keys from the trigger (wakeStreams: started and claimed in one
// statement), the ends of wakes (the next wake their statement started), and looks for due
// deliveries, when notified (a wake started anywhere), on this instance's timers (a wake or
// retry coming due, lapsed leases) and, rarely, a backstop over every subscription.
// What it delivers and what it woke goes to the busy ledger (busy.ts), which the trigger reads.
//
// Leases (PROTOCOL 7.3, issue 26.1): a webhook wake's lease starts when it is sent, and the
// send is cut off when the lease ends; a lease that ends (webhook or pull-wake) ends its wake
// at that moment, by a timer on the instance that last saw the lease start or move (the tick
// is only the backstop for an instance that died), and the next wake starts at once when
// work is pending. So one generation is never sent twice at once, and a token outlives
// neither its wake nor its lease.
import type { Logger } from "pino";
import type { TimerHandle } from "../lib/clock.ts";
import type { FailureReporter } from "../observability/background.ts";
import type { Store } from "../store/index.ts";
import type { ClaimLimits, DueDelivery, SubscriptionStore, Woken } from "../store/subscriptions/index.ts";
import type { BusyLedger } from "./busy.ts";
import { type DeliveryEnd, type NextWake, Sender } from "./deliver.ts";
import type { KeyRing } from "./keys.ts";
import { LeaseTimers } from "./lease-timers.ts";
import { Connections } from "./send.ts";
import type { Resolver } from "./ssrf.ts";

export interface DelivererOptions {
  /** Where the subscription layer logs (server.ts hands it a child of the process logger). */
  logger: Logger;
  /** Logs and counts a background failure (observability/background.ts). */
  failed: FailureReporter;
  concurrency: number;
  /** Most sends open at once to one host (WEBHOOK_HOST_CONCURRENCY; at most `concurrency`). */
  hostConcurrency?: number;
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS. */
  allowPrivateTargets?: boolean;
  timeoutMs: number;
  tickMs: number;
  backstopMs: number;
  publicBaseUrl?: string;
  resolver?: Resolver;
  tokensFile?: string;
  /** Runs after the deliverer appended a wake event (server wiring: the trigger, as for any append). */
  appended: (key: string) => void;
}

/** A delivery lease outlasts its send by this much: a live sender has always given up first. */
const DELIVERY_MARGIN_MS = 5_000;

export class Deliverer {
  private inflight = 0;
  private passing = false;
  private again = false;
  private stopped = false;
  private claims = 0;
  /** A claim was cut short by WEBHOOK_CONCURRENCY: the next delivery to end looks again. */
  private starved = false;
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  /** Timers for wakes not due yet, by due slot. */
  private readonly wakeups = new Map<number, TimerHandle>();
  private readonly running = new Set<Promise<void>>();
  /** Open sends per webhook host (the per-host cap, issue 25.8). */
  private readonly openByHost = new Map<string, number>();
  private readonly leases: LeaseTimers;
  /** Aborts webhook calls in flight at shutdown: they count as failed and are retried. */
  private readonly stopping = new AbortController();
  private readonly sender: Sender;
  private readonly connections: Connections;
  private claiming: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly subs: SubscriptionStore,
    streams: Store,
    keys: KeyRing,
    private readonly busy: BusyLedger,
    private readonly instanceId: string,
    private readonly opts: DelivererOptions,
  ) {
    const clock = busy.clock;
    this.leases = new LeaseTimers(
      (id) => this.leaseEnds(id),
      (id, err) => this.opts.failed("subscription lease end (the tick retries)", err, { subscription: id }),
      clock,
    );
    const policy = { allowPrivate: opts.allowPrivateTargets === true };
    this.connections = new Connections(this.perHost);
    this.sender = new Sender(subs, streams, keys, { ...opts, policy, connections: this.connections }, {
      now: () => clock.now(),
      watchLease: (id, ms) => this.watchLease(id, ms),
      kickIn: (ms) => this.kickIn(ms),
      appended: opts.appended,
    });
  }

  /** Counters for /healthz and tests. */
  get stats() {
    return this.sender.stats;
  }

  private get perHost(): number {
    return Math.max(1, Math.min(this.opts.hostConcurrency ?? this.opts.concurrency, this.opts.concurrency));
  }

  private limits(room: number): ClaimLimits {
    return {
      prefix: `${this.instanceId}:${++this.claims}`,
      limit: Math.max(0, room),
      perHost: this.perHost,
      openByHost: this.openByHost,
      timeoutMs: this.opts.timeoutMs,
      marginMs: DELIVERY_MARGIN_MS,
    };
  }

  start(): void {
    const every = (ms: number, f: () => Promise<unknown>) => {
      const t = setInterval(() => f().catch((err) => this.opts.failed("subscription periodic check", err)), ms);
      (t as { unref?: () => void }).unref?.();
      this.timers.push(t);
    };
    // Each tick: lapsed leases end (and re-wake), and retries that came due are claimed.
    every(this.opts.tickMs, async () => {
      const sentAt = this.busy.clock.now();
      const { expired, woken } = await this.subs.expireLeases();
      this.sender.metrics.leaseExpiries.inc(expired);
      for (const w of woken) this.woke(w, sentAt);
      this.kick();
    });
    every(this.opts.backstopMs, async () => {
      const sentAt = this.busy.clock.now();
      for (const w of await this.subs.wakeAllPending()) this.woke(w, sentAt);
    });
    this.kick();
  }

  /**
   * Appends committed on `keys` (from the trigger): their idle subscriptions with pending
   * work are woken, and those due now claimed, in one statement; the claimed are sent at
   * once, the rest when due.
   */
  async wakeStreams(keys: string[]): Promise<void> {
    if (this.stopped) return;
    const sentAt = this.busy.clock.now();
    const woken = await this.exclusive(async () => {
      const r = await this.subs.wakeAndClaim(keys, this.limits(this.opts.concurrency - this.inflight));
      // Stopped meanwhile: what was claimed is sent by another instance once its delivery lease lapses.
      if (!this.stopped) for (const d of r.claimed) this.run(d);
      return r.woken;
    });
    for (const w of woken) this.woke(w, sentAt);
  }

  /** A wake this instance started (at `sentAt`) is ours to deliver when due. */
  woke(w: Woken, sentAt: number): void {
    this.busy.woke(w, sentAt);
    this.kickIn(w.dueInMs);
  }

  /** Looks for due deliveries in `ms` (a wake that is not due yet); now when `ms` <= 0. */
  kickIn(ms: number): void {
    if (ms <= 0) return this.kick();
    if (this.stopped) return;
    const clock = this.busy.clock;
    // One timer per 10 ms slot: a hundred wakes due at about the same time are one claim.
    const at = Math.ceil((clock.now() + ms + 2) / 10) * 10;
    if (this.wakeups.has(at)) return;
    this.wakeups.set(at, clock.setTimeout(() => {
      this.wakeups.delete(at);
      this.kick();
    }, at - clock.now()));
  }

  /** Looks for due deliveries now (a wake started, a delivery ended, a timer fired). */
  kick(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = true;
    this.pass()
      .catch((err) => this.opts.failed("subscription delivery claim", err))
      .finally(() => (this.passing = false));
  }

  private async pass(): Promise<void> {
    do {
      this.again = false;
      const room = this.opts.concurrency - this.inflight;
      if (this.stopped) return;
      if (room <= 0) {
        this.starved = true;
        return;
      }
      const due = await this.exclusive(async () => {
        const claimed = await this.subs.claimDue(this.limits(this.opts.concurrency - this.inflight));
        for (const d of claimed) this.run(d);
        return claimed;
      });
      // A host at its cap may have due wakes the claim left: the next end of a send looks again.
      for (const n of this.openByHost.values()) if (n >= this.perHost) this.starved = true;
      if (due.length >= room) this.again = this.starved = true;
    } while (this.again && !this.stopped);
  }

  /**
   * One claiming statement at a time (wakeStreams, pass): each claims within the room and
   * host shares left by the one before, whose claims are counted before the next starts.
   */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const p = this.claiming.then(f);
    this.claiming = p.catch(() => {});
    return p;
  }

  /** Sends a claimed delivery, counting it against the instance's and its host's caps. */
  private run(d: DueDelivery): void {
    this.inflight++;
    if (d.host !== null) this.openByHost.set(d.host, (this.openByHost.get(d.host) ?? 0) + 1);
    this.busy.delivering(d.id);
    const p: Promise<void> = this.deliver(d)
      .catch((err) => this.opts.failed("subscription delivery", err, { subscription: d.id }))
      .finally(() => {
        this.inflight--;
        if (d.host !== null) {
          const n = this.openByHost.get(d.host)! - 1;
          if (n > 0) this.openByHost.set(d.host, n);
          else this.openByHost.delete(d.host);
        }
        this.running.delete(p);
        // A claim that stopped for want of room (or of a host's share) looks again now there is some.
        if (this.starved) {
          this.starved = false;
          this.kick();
        }
      });
    this.running.add(p);
  }

  private async deliver(d: DueDelivery): Promise<void> {
    let end: DeliveryEnd = { kind: "in-flight" };
    try {
      end = await this.sender.attempt(d, this.stopping.signal);
    } finally {
      this.busy.delivered(d.id);
    }
    if (end.kind === "ended") await this.afterEnd(d.id, end.next);
  }

  /**
   * A wake of `id` ended: the next wake its ending statement started is ours to deliver.
   * Without one, one more look in a new snapshot: an append that committed while the
   * ending statement ran was not visible to it, and the append's own trigger saw the wake
   * still in flight and left it (on whichever instance it ran). Returns whether a next wake
   * started (this instance delivers it).
   */
  async afterEnd(id: string, next: NextWake | undefined): Promise<boolean> {
    if (next) {
      this.woke(next.wake, next.sentAt);
      return true;
    }
    if (this.stopped) return false;
    const sentAt = this.busy.clock.now();
    const w = await this.subs.wakeSubscription(id);
    if (!w) return false;
    this.woke(w, sentAt);
    return true;
  }

  /** The lease of `id` started or was extended here and runs `ms` more: this instance ends it when it lapses. */
  watchLease(id: string, ms: number): void {
    this.leases.watch(id, ms);
  }

  /** A lease this instance watches is due: ended (and the next wake started), or how long it has left. */
  private async leaseEnds(id: string): Promise<number | undefined> {
    if (this.stopped) return undefined;
    const r = await this.subs.expireLease(id);
    if (!r.expired) return r.leaseMs; // extended meanwhile (or no lease any more)
    this.sender.metrics.leaseExpiries.inc();
    await this.afterEnd(id, undefined);
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.wakeups.values()) this.busy.clock.clearTimeout(t);
    this.leases.stop();
    this.stopping.abort();
    await Promise.allSettled([...this.running]);
    this.connections.close();
  }
}
