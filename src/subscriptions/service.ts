// The subscription service: what the HTTP handlers call. It checks requests (pure rules in
// protocol/subscription-requests.ts, tokens in keys.ts, scope in scope.ts), runs the
// subscription store's statements, and owns this instance's wake pipeline:
//   committed append ──► trigger.ts (followed? every follower busy? batch the keys)
//     ──► deliverer.ts wakeStreams (store: start the wakes and claim those due, one statement)
//     ──► deliver.ts (the POST or the wake event; the outcome ends or keeps the wake)
//     ──► busy.ts (what is being delivered or not due yet), read by the trigger.
import { randomUUID } from "node:crypto";
import process from "node:process";
import type { Principal } from "../auth/tokens.ts";
import type { Clock } from "../lib/clock.ts";
import { type FailureReporter, reportFailures } from "../observability/background.ts";
import { log } from "../observability/log.ts";
import { SubscriptionError } from "../protocol/errors.ts";
import { globRegexSource } from "../protocol/glob.ts";
import {
  bearerToken,
  checkSubscriptionId,
  NotFound,
  parseAddStreams,
  parseClaimWorker,
  parseJsonBody,
  parseRemovedStream,
  parseSubscriptionConfig,
  parseWakeCall,
  streamKey,
} from "../protocol/subscription-requests.ts";
import { streamEntries, type WakeCall } from "../protocol/wake-fence.ts";
import type { Store } from "../store/index.ts";
import type { Listener, SubscriptionRecord, SubscriptionStore } from "../store/subscriptions/index.ts";
import { BusyLedger } from "./busy.ts";
import { Deliverer, type DelivererOptions } from "./deliverer.ts";
import { KeyRing, type TokenClaims } from "./keys.ts";
import { checkWebhookUrl } from "./ssrf.ts";
import { WakeTrigger } from "./trigger.ts";
import { subscriptionView } from "./view.ts";
import { both, callerReader, checkCreate, checkStreams, outOfScope, parseScope, type Readable, scopeOf, scopeReader, visibleLinks } from "./scope.ts";

export interface SubscriptionOptions extends Omit<DelivererOptions, "logger" | "failed" | "appended"> {
  logger?: DelivererOptions["logger"];
  signingKey?: string;
  publishedKeys?: string;
  tokenTtlSeconds: number;
  /** MAX_PATH_BYTES: the longest stream key a body may name. */
  maxPathBytes: number;
  /** The timers' clock (tests move a manual one). */
  clock?: Clock;
}

/** A request's caller, as the guard authenticated it; undefined when auth is off. */
export type Caller = Principal | undefined;

export class Subscriptions {
  readonly instanceId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly trigger: WakeTrigger;
  readonly deliverer: Deliverer;
  private listener?: Listener;
  private readonly failed: FailureReporter;
  private readonly clock: Clock;

  private constructor(
    private readonly store: SubscriptionStore,
    private readonly keys: KeyRing,
    streams: Store,
    private readonly opts: SubscriptionOptions,
  ) {
    const logger = opts.logger ?? log;
    this.failed = reportFailures(logger);
    const busy = new BusyLedger(opts.clock);
    this.clock = busy.clock;
    this.deliverer = new Deliverer(store, streams, keys, busy, this.instanceId, {
      ...opts,
      logger,
      failed: this.failed,
      // A wake event is an append like any other: a subscription may follow the wake stream.
      appended: (key) => this.trigger.appended(key),
    });
    this.trigger = new WakeTrigger(store, busy, (keys) => this.deliverer.wakeStreams(keys), this.failed);
  }

  /** `store` is bound to the database and to SUBSCRIPTION_WAKE_INTERVAL_MS (server.ts). */
  static async start(store: SubscriptionStore, streams: Store, opts: SubscriptionOptions): Promise<Subscriptions> {
    const keys = await KeyRing.load(store, opts);
    const subs = new Subscriptions(store, keys, streams, opts);
    const reload = () => subs.trigger.reload().catch((err) => subs.failed("subscription links reload", err));
    subs.listener = await store.listen(
      (payload) => (payload === "links" ? reload() : subs.deliverer.kick()),
      // (Re)connected: anything notified meanwhile is lost, so reload and look.
      () => {
        reload();
        subs.deliverer.kick();
      },
    );
    await subs.trigger.reload();
    subs.deliverer.start();
    return subs;
  }

  async stop(): Promise<void> {
    await this.deliverer.stop();
    await this.trigger.idle().catch(() => {});
    await this.listener?.close().catch(() => {});
  }

  jwks() {
    return this.keys.jwks();
  }

  private viewBase(origin: string): string {
    return this.opts.publicBaseUrl ?? origin;
  }

  async put(id: string, bytes: Uint8Array, origin: string, caller: Caller): Promise<{ created: boolean; body: Record<string, unknown> }> {
    checkSubscriptionId(id);
    const c = parseSubscriptionConfig(parseJsonBody(bytes), this.opts.maxPathBytes);
    if (c.webhookUrl !== null) checkWebhookUrl(c.webhookUrl, { allowPrivate: this.opts.allowPrivateTargets === true });
    if (caller) checkCreate(caller, c);
    const result = await this.store.create({
      id,
      type: c.type,
      pattern: c.pattern,
      patternRegex: c.pattern === null ? null : globRegexSource(c.pattern),
      streams: c.streams.map(streamKey),
      webhookUrl: c.webhookUrl,
      wakeStream: c.wakeStream,
      leaseTtlMs: c.leaseTtlMs,
      description: c.description,
      configHash: c.hash,
      baseUrl: origin,
      scope: caller ? JSON.stringify(scopeOf(caller)) : null,
    });
    if (result.kind === "conflict") {
      throw new SubscriptionError("SUBSCRIPTION_ALREADY_EXISTS", "a subscription with this id exists with a different configuration");
    }
    await this.trigger.reload();
    return { created: result.kind === "created", body: this.view(result.subscription, origin, caller) };
  }

  async get(id: string, origin: string, caller: Caller): Promise<Record<string, unknown>> {
    const s = await this.store.find(checkSubscriptionId(id));
    if (!s) throw NotFound(id);
    return this.view(s, origin, caller);
  }

  /** The subscription as the caller may see it: only streams inside both its scope and the caller's. */
  private view(s: SubscriptionRecord, origin: string, caller: Caller): Record<string, unknown> {
    const links = s.scope === null && !caller ? s.links : visibleLinks(s.links, both(this.scope(s.scope), callerReader(caller)));
    return subscriptionView({ ...s, links }, { kid: this.keys.activeKid, base: this.viewBase(origin) });
  }

  /** What a subscription with this stored scope may cover now. */
  private scope(stored: string | null): Readable {
    return scopeReader(parseScope(stored), this.opts.tokensFile);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.store.delete(checkSubscriptionId(id)))) throw NotFound(id);
  }

  async addStreams(id: string, bytes: Uint8Array, caller: Caller): Promise<void> {
    checkSubscriptionId(id);
    const paths = parseAddStreams(bytes, this.opts.maxPathBytes);
    if (caller) {
      const s = await this.store.find(id);
      if (!s) throw NotFound(id);
      checkStreams(caller, paths, this.scope(s.scope));
    }
    if (!(await this.store.addExplicitLinks(id, paths.map(streamKey)))) throw NotFound(id);
    await this.trigger.reload();
  }

  async removeStream(id: string, encodedPath: string): Promise<void> {
    checkSubscriptionId(id);
    if (!(await this.store.removeExplicitLink(id, parseRemovedStream(encodedPath, this.opts.maxPathBytes)))) throw NotFound(id);
    await this.trigger.reload();
  }

  async claim(id: string, bytes: Uint8Array, caller: Caller): Promise<Record<string, unknown>> {
    checkSubscriptionId(id);
    const worker = parseClaimWorker(bytes);
    const r = await this.store.claimWake(id, worker, (scope, links) => (scope === null ? [] : outOfScope(links, this.scope(scope))));
    if (r.kind === "busy") {
      throw new SubscriptionError("ALREADY_CLAIMED", "another worker holds the lease", { current_holder: r.holder, generation: r.generation });
    }
    if (r.kind === "idle") throw new SubscriptionError("NO_PENDING_WORK", "the subscription has no pending work");
    this.deliverer.watchLease(id, r.leaseTtlMs);
    const token = await this.keys.issueToken({ subscription: id, incarnation: r.incarnation, generation: r.generation, wakeId: r.wakeId });
    // Links outside the subscription's scope are gone; a worker with narrower grants than its creator sees less still.
    const links = visibleLinks(r.links, callerReader(caller));
    return { wake_id: r.wakeId, generation: r.generation, token, streams: streamEntries(links), lease_ttl_ms: r.leaseTtlMs };
  }

  /**
   * The signed token of a callback, ack or release (Authorization header only, PROTOCOL 12.9),
   * checked before its body is read: a caller without a valid token costs no body read.
   */
  async verifyWakeToken(id: string, authorization: string | null): Promise<TokenClaims> {
    checkSubscriptionId(id);
    return await this.keys.verifyToken(bearerToken(authorization), id);
  }

  /** Webhook callback (`webhook`) or pull-wake ack (`pull-wake`), with its verified token. */
  async ack(type: "webhook" | "pull-wake", id: string, token: TokenClaims, bytes: Uint8Array) {
    const call = this.wakeCall(type, id, token, bytes, true);
    const sentAt = this.clock.now();
    const { nextWake, leaseMs } = await this.store.applyWakeCall(call);
    if (leaseMs !== undefined) this.deliverer.watchLease(id, leaseMs);
    // A heartbeat (not done) leaves the wake in flight and starts none.
    const next = call.done && (await this.deliverer.afterEnd(id, nextWake && { wake: nextWake, sentAt }));
    return { ok: true, next_wake: next };
  }

  async release(id: string, token: TokenClaims, bytes: Uint8Array): Promise<void> {
    const call = this.wakeCall("pull-wake", id, token, bytes, false);
    const sentAt = this.clock.now();
    const { nextWake } = await this.store.releaseWake(call);
    await this.deliverer.afterEnd(id, nextWake && { wake: nextWake, sentAt });
  }

  private wakeCall(type: WakeCall["type"], id: string, token: TokenClaims, bytes: Uint8Array, acks: boolean): WakeCall {
    return { id, type, token, ...parseWakeCall(bytes, acks, this.opts.maxPathBytes) };
  }
}
