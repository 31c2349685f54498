// One delivery attempt of a claimed wake (PROTOCOL 7.1, 7.2): the webhook POST, or the wake
// event appended to a pull-wake subscription's wake stream, and what its outcome does to
// the row. Failures are retried with exponential backoff and jitter; the schedule lives in
// the row, so it survives restarts. Each retry of a failed webhook is a new wake.
import type { Logger } from "pino";
import { type Backoff, backoffMs } from "../lib/backoff.ts";
import { subscriptionMetrics } from "../observability/subscriptions.ts";
import { relativeOf, streamKey } from "../protocol/subscription-requests.ts";
import { streamEntries } from "../protocol/wake-fence.ts";
import type { Store } from "../store/index.ts";
import type { DueDelivery, SubscriptionStore, Woken } from "../store/subscriptions/index.ts";
import type { KeyRing } from "./keys.ts";
import { mayAppend, parseScope, splitByScope } from "./scope.ts";
import type { Connections } from "./send.ts";
import type { Resolver, TargetPolicy } from "./ssrf.ts";
import { sendWebhook } from "./webhook.ts";

/** Webhook retries (PROTOCOL 7.1): 1 s doubling to 60 s, ±20%. */
export const DELIVERY_RETRY: Backoff = { firstMs: 1000, maxMs: 60_000, jitter: [0.8, 1.2] };

/** Retry delay after the n-th consecutive failure. */
export const retryDelayMs = (failures: number, random = Math.random()) => Math.round(backoffMs(DELIVERY_RETRY, failures - 1, random));

/** A wake started by a statement sent at `sentAt` (clock ms). */
export interface NextWake {
  wake: Woken;
  sentAt: number;
}

/** How an attempt left the subscription: the wake still in flight, or ended (and perhaps the next one started). */
export type DeliveryEnd = { kind: "in-flight" } | { kind: "ended"; next?: NextWake };

export interface SendOptions {
  logger: Logger;
  timeoutMs: number;
  policy: TargetPolicy;
  resolver?: Resolver;
  publicBaseUrl?: string;
  /** AUTH_TOKENS_FILE: a token-file creator's current grants narrow their subscriptions (scope.ts). */
  tokensFile?: string;
  /** Kept-alive connections to webhook targets (send.ts). */
  connections: Connections;
}

/** What an attempt reports back to the deliverer. */
export interface AttemptHooks {
  now(): number;
  /** A webhook's lease runs `ms` more after its send: this instance ends it when it lapses. */
  watchLease(id: string, ms: number): void;
  /** Look again for due deliveries in `ms` (a retry's due time). */
  kickIn(ms: number): void;
  /** A wake event was appended (it may wake a subscription that follows the wake stream). */
  appended(key: string): void;
}

export class Sender {
  /** Counters for /healthz and tests. */
  readonly stats = { delivered: 0, failed: 0, dropped: 0 };
  /** The same on /metrics. */
  readonly metrics = subscriptionMetrics();

  constructor(
    private readonly subs: SubscriptionStore,
    private readonly streams: Store,
    private readonly keys: KeyRing,
    private readonly opts: SendOptions,
    private readonly hooks: AttemptHooks,
  ) {}

  /** One delivery attempt, cut off by `stopping` at shutdown (then it counts as failed and is retried). */
  async attempt(d: DueDelivery, stopping: AbortSignal): Promise<DeliveryEnd> {
    // Streams outside the subscription's scope (its creator's grants narrowed since) are
    // dropped before anything is named or counted as pending (scope.ts).
    const scope = parseScope(d.scope);
    const { inside, outside } = splitByScope(d.links, scope, this.opts.tokensFile);
    if (outside.length > 0) {
      await this.subs.dropLinks(d.id, outside);
      d = { ...d, links: inside };
    }
    if (!d.links.some((l) => l.tail > l.ackedPos)) {
      this.stats.dropped++;
      await this.subs.deliveryDropped(d);
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
      ok = d.type === "webhook" ? await this.postWebhook(d, AbortSignal.any([timeout, stopping])) : await this.appendWakeEvent(d);
    } catch (err) {
      this.stats.failed++;
      this.metrics.failures.inc();
      if (d.type === "webhook") {
        // The lease ended during the send: so does the wake, and the next goes out at once.
        if (await this.subs.endLapsedDelivery(d)) {
          this.metrics.leaseExpiries.inc();
          return { kind: "ended" };
        }
        // Cut off at the lease's end, which a callback moved meanwhile (or this clock runs
        // ahead of the database's): the wake goes on under its lease.
        if (leaseBound && timeout.aborted) return this.leaseRunsOn(d);
      }
      const delay = retryDelayMs(d.attempt + 1);
      // Counted above (ds_subscription_delivery_failures_total); logged here, once.
      this.opts.logger.warn({ subscription: d.id, attempt: d.attempt + 1, retryInMs: Math.round(delay), err }, "webhook or wake delivery failed");
      await this.subs.deliveryFailed(d, delay);
      // The row holds the schedule; this timer only saves waiting for the next tick.
      this.hooks.kickIn(delay + 10);
      return { kind: "in-flight" };
    }
    this.stats.delivered++;
    this.metrics.deliveries.inc();
    if (ok === "done") {
      const sentAt = this.hooks.now();
      const { ended, next } = await this.subs.deliveryFinished(d);
      if (ended) return { kind: "ended", next: next && { wake: next, sentAt } };
      // The answer came after the lease lapsed (by the database clock): it acks nothing.
      if (await this.subs.endLapsedDelivery(d)) {
        this.metrics.leaseExpiries.inc();
        return { kind: "ended" };
      }
      return { kind: "in-flight" };
    }
    return this.leaseRunsOn(d);
  }

  /** The send is over and the wake stays in flight: a webhook's lease is watched from here. */
  private async leaseRunsOn(d: DueDelivery): Promise<DeliveryEnd> {
    const leaseMs = await this.subs.deliveryDone(d);
    if (leaseMs !== undefined) this.hooks.watchLease(d.id, leaseMs);
    return { kind: "in-flight" };
  }

  private postWebhook(d: DueDelivery, signal: AbortSignal): Promise<"done" | "delivered"> {
    const { policy, resolver, publicBaseUrl, connections } = this.opts;
    const to = { keys: this.keys, policy, resolver, publicBaseUrl, connections };
    return sendWebhook(d, streamEntries(d.links), to, signal);
  }

  private async appendWakeEvent(d: DueDelivery): Promise<"delivered"> {
    const key = streamKey(d.wakeStream!);
    const stream = await this.streams.find(key);
    if (!stream || stream.expired || stream.deleted) throw new Error(`wake stream ${d.wakeStream} does not exist`);
    const first = d.links.find((l) => l.tail > l.ackedPos)!;
    const event = { type: "wake", subscription_id: d.id, stream: relativeOf(first.key), generation: d.generation, ts: Date.now() };
    const bytes = new TextEncoder().encode(JSON.stringify(event));
    await this.streams.append({
      path: key,
      contentType: stream.contentType,
      body: bytes,
      messages: stream.isJson ? { data: bytes, count: 1 } : null,
      close: false,
      streamSeq: null,
    });
    this.hooks.appended(key);
    return "delivered";
  }
}
