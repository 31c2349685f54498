// Delivers wakes: webhook POSTs (PROTOCOL 7.1) and the wake events of pull-wake
// subscriptions (7.2). Due deliveries are claimed in the database with a delivery lease, so
// across all instances one delivers a wake at a time, and if it dies another takes over once
// the lease lapses. No row lock is held during the HTTP call. Failures are retried with
// exponential backoff and jitter; the schedule lives in the row, so it survives restarts.
// Every instance looks when notified (a wake started anywhere), on its own timer (retries
// coming due, lapsed leases) and, rarely, through a backstop over every subscription.
//
// Leases (PROTOCOL 7.3, issue 26.1): a webhook wake's lease starts when it is sent, and the
// send is cut off when the lease ends; a lease that ends (webhook or pull-wake) ends its wake
// at that moment, by a timer on the instance that last saw the lease start or move (the tick
// is only the backstop for an instance that died), and the next wake starts at once when
// work is pending. Each retry of a failed webhook is a new wake. So one generation is never
// sent twice at once, and a token outlives neither its wake nor its lease.
import type { Logger } from "pino";
import { log } from "../observability/log.ts";
import { type FailureReporter, reportFailures } from "../observability/background.ts";
import { subscriptionMetrics } from "../observability/subscriptions.ts";
import { formatOffset } from "../protocol/offsets.ts";
import type { Db } from "../store/driver/db.ts";
import type { Store } from "../store/index.ts";
import {
  claimDueDeliveries,
  deliveryDone,
  deliveryDropped,
  deliveryFailed,
  deliveryFinished,
  type DueDelivery,
  endLapsedDelivery,
  expireLease,
  expireLeases,
  wakeAllPending,
  wakeSubscription,
} from "../store/subscriptions/wakes.ts";
import type { Woken } from "../store/subscriptions/sql.ts";
import type { KeyRing } from "./keys.ts";
import { LeaseTimers } from "./lease-timers.ts";
import { relativeOf, streamKey } from "./paths.ts";
import type { Resolver, TargetPolicy } from "./ssrf.ts";
import { sendWebhook } from "./webhook.ts";
import type { WakeTrigger } from "./trigger.ts";
import { controlUrl } from "./view.ts";
import { mayAppend, parseScope, splitByScope } from "./scope.ts";
import { dropLinks } from "../store/subscriptions/subscriptions.ts";

export interface DelivererOptions {
  /** Where the subscription layer logs (server.ts hands it a child of the process logger). */
  logger?: Logger;
  /** Logs and counts a background failure (observability/background.ts). */
  failed?: FailureReporter;
  concurrency: number;
  /** Most sends open at once to one host (WEBHOOK_HOST_CONCURRENCY; at most `concurrency`). */
  hostConcurrency?: number;
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS. */
  allowPrivateTargets?: boolean;
  timeoutMs: number;
  tickMs: number;
  backstopMs: number;
  /** A subscription is woken at most once per this many milliseconds (SUBSCRIPTION_WAKE_INTERVAL_MS). */
  wakeIntervalMs: number;
  publicBaseUrl?: string;
  resolver?: Resolver;
  /** AUTH_TOKENS_FILE: a token-file creator's current grants narrow their subscriptions (scope.ts). */
  tokensFile?: string;
}

/** A delivery lease outlasts its send by this much: a live sender has always given up first. */
const DELIVERY_MARGIN_MS = 5_000;

/** Retry delay after the n-th consecutive failure: 1 s doubling to 60 s, ±20% (PROTOCOL 7.1). */
export function retryDelayMs(failures: number, random = Math.random()): number {
  const base = Math.min(1000 * 2 ** Math.max(0, failures - 1), 60_000);
  return Math.round(base * (0.8 + 0.4 * random));
}

export function streamEntries(d: Pick<DueDelivery, "links">) {
  return d.links.map((l) => ({
    path: relativeOf(l.key),
    link_type: l.explicit ? "explicit" : "glob",
    acked_offset: formatOffset(l.ackedPos),
    tail_offset: formatOffset(l.tail),
    has_pending: l.tail > l.ackedPos,
    // Retention removed data past the cursor (notes/retention.md): reading from acked_offset
    // would be 410; the worker resumes at earliest_offset, knowing what lay between is gone.
    ...(l.ackedPos < l.earliest ? { earliest_offset: formatOffset(l.earliest), behind_earliest: true } : {}),
  }));
}

/** A wake started by a statement sent at `sentAt` (performance.now()). */
export interface NextWake {
  wake: Woken;
  sentAt: number;
}

/** How a delivery attempt left the subscription: the wake still in flight, or ended (and perhaps the next one started). */
type DeliveryEnd = { kind: "in-flight" } | { kind: "ended"; next?: NextWake };

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
  private readonly wakeups = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly running = new Set<Promise<void>>();
  /** Open sends per webhook host (the per-host cap, issue 25.8). */
  private readonly openByHost = new Map<string, number>();
  /** Leases this instance started or extended: it ends them when they lapse. */
  private readonly leases = new LeaseTimers(
    (id) => this.leaseEnds(id),
    (id, err) => this.failed("subscription lease end (the tick retries)", err, { subscription: id }),
  );
  /** Aborts webhook calls in flight at shutdown: they count as failed and are retried. */
  private readonly stopping = new AbortController();
  /** Counters for /healthz and tests. */
  readonly stats = { delivered: 0, failed: 0, dropped: 0 };
  /** The same on /metrics. */
  private readonly metrics = subscriptionMetrics();

  constructor(
    private readonly db: Db,
    private readonly store: Store,
    private readonly keys: KeyRing,
    private readonly trigger: WakeTrigger,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly opts: DelivererOptions,
  ) {}

  private get failed(): FailureReporter {
    return this.opts.failed ?? reportFailures();
  }

  private get perHost(): number {
    return Math.max(1, Math.min(this.opts.hostConcurrency ?? this.opts.concurrency, this.opts.concurrency));
  }

  private get policy(): TargetPolicy {
    return { allowPrivate: this.opts.allowPrivateTargets === true };
  }

  start(): void {
    const every = (ms: number, f: () => Promise<unknown>) => {
      const t = setInterval(() => f().catch((err) => this.failed("subscription periodic check", err)), ms);
      (t as { unref?: () => void }).unref?.();
      this.timers.push(t);
    };
    // Each tick: lapsed leases end (and re-wake), and retries that came due are claimed.
    every(this.opts.tickMs, async () => {
      const sentAt = performance.now();
      const { expired, woken } = await expireLeases(this.db, this.channel, this.opts.wakeIntervalMs);
      this.metrics.leaseExpiries.inc(expired);
      for (const w of woken) this.woke(w, sentAt);
      this.kick();
    });
    every(this.opts.backstopMs, async () => {
      const sentAt = performance.now();
      for (const w of await wakeAllPending(this.db, this.channel, this.opts.wakeIntervalMs)) this.woke(w, sentAt);
    });
    this.kick();
  }

  /** Looks for due deliveries in `ms` (a wake that is not due yet); now when `ms` <= 0. */
  kickIn(ms: number): void {
    if (ms <= 0) return this.kick();
    if (this.stopped) return;
    // One timer per 10 ms slot: a hundred wakes due at about the same time are one claim.
    const at = Math.ceil((performance.now() + ms + 2) / 10) * 10;
    if (this.wakeups.has(at)) return;
    const t = setTimeout(() => {
      this.wakeups.delete(at);
      this.kick();
    }, at - performance.now());
    (t as { unref?: () => void }).unref?.();
    this.wakeups.set(at, t);
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
      .catch((err) => this.failed("subscription delivery claim", err))
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
      const due = await claimDueDeliveries(this.db, `${this.instanceId}:${++this.claims}`, {
        limit: room,
        perHost: this.perHost,
        openByHost: this.openByHost,
        timeoutMs: this.opts.timeoutMs,
        marginMs: DELIVERY_MARGIN_MS,
      });
      for (const d of due) {
        this.inflight++;
        if (d.host !== null) this.openByHost.set(d.host, (this.openByHost.get(d.host) ?? 0) + 1);
        this.trigger.delivering(d.id);
        const p: Promise<void> = this.deliver(d)
          .catch((err) => this.failed("subscription delivery", err, { subscription: d.id }))
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
      // A host at its cap may have due wakes the claim left: the next end of a send looks again.
      for (const n of this.openByHost.values()) if (n >= this.perHost) this.starved = true;
      if (due.length === room) this.again = this.starved = true;
    } while (this.again && !this.stopped);
  }

  /**
   * A wake of `id` ended with nothing pending as far as the ending statement could see, and
   * the subscription is idle. An append that committed while that statement ran was not
   * visible to it, and the append's own trigger saw the wake still in flight and left it
   * (on whichever instance it ran): so one more look, in a new snapshot. Returns whether a
   * new wake started (this instance delivers it).
   */
  private async ended(id: string): Promise<boolean> {
    if (this.stopped) return false;
    const sentAt = performance.now();
    const next = await wakeSubscription(this.db, id, this.opts.wakeIntervalMs);
    if (!next) return false;
    this.woke(next, sentAt);
    return true;
  }

  /**
   * A wake of `id` ended: the next wake its ending statement started is ours to deliver;
   * without one, one more look (ended). Returns whether a next wake started.
   */
  async afterEnd(id: string, next: NextWake | undefined): Promise<boolean> {
    if (!next) return this.ended(id);
    this.woke(next.wake, next.sentAt);
    return true;
  }

  /** A wake this instance started (at `sentAt`) is ours to deliver when due. */
  woke(w: Woken, sentAt: number): void {
    this.trigger.woke(w, sentAt);
    this.kickIn(w.dueInMs);
  }

  /** The lease of `id` started or was extended here and runs `ms` more: this instance ends it when it lapses. */
  watchLease(id: string, ms: number): void {
    this.leases.watch(id, ms);
  }

  /** A lease this instance watches is due: ended (and the next wake started), or how long it has left. */
  private async leaseEnds(id: string): Promise<number | undefined> {
    if (this.stopped) return undefined;
    const r = await expireLease(this.db, id);
    if (!r.expired) return r.leaseMs; // extended meanwhile (or no lease any more)
    this.metrics.leaseExpiries.inc();
    await this.ended(id);
    return undefined;
  }

  private async deliver(d: DueDelivery): Promise<void> {
    let end: DeliveryEnd = { kind: "in-flight" };
    try {
      end = await this.attempt(d);
    } finally {
      this.trigger.delivered(d.id);
    }
    if (end.kind === "ended") await this.afterEnd(d.id, end.next);
  }

  /** One delivery attempt: it left the subscription idle, woken again, or with the wake in flight. */
  private async attempt(d: DueDelivery): Promise<DeliveryEnd> {
    // Streams outside the subscription's scope (its creator's grants narrowed since) are
    // dropped before anything is named or counted as pending (scope.ts).
    const scope = parseScope(d.scope);
    const { inside, outside } = splitByScope(d.links, scope, this.opts.tokensFile);
    if (outside.length > 0) {
      await dropLinks(this.db, d.id, outside);
      d = { ...d, links: inside };
    }
    if (!d.links.some((l) => l.tail > l.ackedPos)) {
      this.stats.dropped++;
      await deliveryDropped(this.db, d);
      return { kind: "ended" };
    }
    let ok: "done" | "delivered";
    if (d.attempt > 0) this.metrics.retries.inc();
    // A webhook send ends when its lease does (unless WEBHOOK_TIMEOUT_MS is shorter).
    const leaseBound = d.leaseMs !== null && d.leaseMs <= this.opts.timeoutMs;
    const timeout = AbortSignal.timeout(Math.max(1, Math.min(this.opts.timeoutMs, d.leaseMs ?? Infinity)));
    try {
      if (d.type === "pull-wake" && !mayAppend(scope, this.opts.tokensFile, d.wakeStream!)) {
        throw new Error(`the subscription's creator may no longer append to its wake stream ${d.wakeStream}`);
      }
      ok = d.type === "webhook" ? await this.postWebhook(d, AbortSignal.any([timeout, this.stopping.signal])) : await this.appendWakeEvent(d);
    } catch (err) {
      this.stats.failed++;
      this.metrics.failures.inc();
      if (d.type === "webhook") {
        // The lease ended during the send: so does the wake, and the next goes out at once.
        if (await endLapsedDelivery(this.db, d)) {
          this.metrics.leaseExpiries.inc();
          return { kind: "ended" };
        }
        // Cut off at the lease's end, which a callback moved meanwhile (or this clock runs
        // ahead of the database's): the wake goes on under its lease.
        if (leaseBound && timeout.aborted) return this.leaseRunsOn(d);
      }
      const delay = retryDelayMs(d.attempt + 1);
      // Counted above (ds_subscription_delivery_failures_total); logged here, once.
      (this.opts.logger ?? log).warn({ subscription: d.id, attempt: d.attempt + 1, retryInMs: Math.round(delay), err }, "webhook or wake delivery failed");
      await deliveryFailed(this.db, d, delay);
      // The row holds the schedule; this timer only saves waiting for the next tick.
      const t = setTimeout(() => this.kick(), delay + 10);
      (t as { unref?: () => void }).unref?.();
      return { kind: "in-flight" };
    }
    this.stats.delivered++;
    this.metrics.deliveries.inc();
    if (ok === "done") {
      const sentAt = performance.now();
      const { ended, next } = await deliveryFinished(this.db, d, this.opts.wakeIntervalMs);
      if (ended) return { kind: "ended", next: next && { wake: next, sentAt } };
      // The answer came after the lease lapsed (by the database clock): it acks nothing.
      if (await endLapsedDelivery(this.db, d)) {
        this.metrics.leaseExpiries.inc();
        return { kind: "ended" };
      }
      return { kind: "in-flight" };
    }
    return this.leaseRunsOn(d);
  }

  /** The send is over and the wake stays in flight: a webhook's lease is watched from here. */
  private async leaseRunsOn(d: DueDelivery): Promise<DeliveryEnd> {
    const leaseMs = await deliveryDone(this.db, d);
    if (leaseMs !== undefined) this.watchLease(d.id, leaseMs);
    return { kind: "in-flight" };
  }

  private postWebhook(d: DueDelivery, signal: AbortSignal): Promise<"done" | "delivered"> {
    const to = { keys: this.keys, policy: this.policy, resolver: this.opts.resolver, publicBaseUrl: this.opts.publicBaseUrl };
    return sendWebhook(d, streamEntries(d), to, signal);
  }

  private async appendWakeEvent(d: DueDelivery): Promise<"delivered"> {
    const key = streamKey(d.wakeStream!);
    const stream = await this.store.find(key);
    if (!stream || stream.expired || stream.deleted) throw new Error(`wake stream ${d.wakeStream} does not exist`);
    const first = d.links.find((l) => l.tail > l.ackedPos)!;
    const event = { type: "wake", subscription_id: d.id, stream: relativeOf(first.key), generation: d.generation, ts: Date.now() };
    const bytes = new TextEncoder().encode(JSON.stringify(event));
    await this.store.append({
      path: key,
      contentType: stream.contentType,
      body: bytes,
      messages: stream.isJson ? { data: bytes, count: 1 } : null,
      close: false,
      streamSeq: null,
    });
    this.trigger.appended(key);
    return "delivered";
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.wakeups.values()) clearTimeout(t);
    this.leases.stop();
    this.stopping.abort();
    await Promise.allSettled([...this.running]);
  }
}
