// The subscription service: what the HTTP handlers call. It checks requests (pure parsing
// in config.ts, tokens in keys.ts), runs the store's statements, and owns this instance's
// trigger set and deliverer.
import { hasControlChars } from "../protocol/paths.ts";
import { type FailureReporter, reportFailures } from "../observability/background.ts";
import { randomUUID } from "node:crypto";
import type { Principal } from "../auth/tokens.ts";
import process from "node:process";
import { SubscriptionError } from "../protocol/errors.ts";
import { isOffsetToken, offsetPosition } from "../protocol/offsets.ts";
import type { Listener } from "../store/driver/listener.ts";
import type { Db } from "../store/driver/db.ts";
import type { Store } from "../store/index.ts";
import { type LinkState, subscriptionsChannel } from "../store/subscriptions/sql.ts";
import { applyWakeCall, claimWake, releaseWake, type WakeCall } from "../store/subscriptions/acks.ts";
import {
  addExplicitLinks,
  createSubscription,
  deleteSubscription,
  findSubscription,
  removeExplicitLink,
  type SubscriptionRecord,
} from "../store/subscriptions/subscriptions.ts";
import { parseJsonBody, parseStreamList, parseSubscriptionConfig } from "./config.ts";
import { Deliverer, type DelivererOptions, streamEntries } from "./deliverer.ts";
import { BadRequestCode, NotFound } from "./errors.ts";
import { globRegexSource } from "./glob.ts";
import { KeyRing, type TokenClaims } from "./keys.ts";
import { relativePath, streamKey } from "./paths.ts";
import { WakeTrigger } from "./trigger.ts";
import { subscriptionView } from "./view.ts";
import {
  both,
  callerReader,
  checkCreate,
  checkStreams,
  outOfScope,
  parseScope,
  type Readable,
  scopeOf,
  scopeReader,
  visibleLinks,
} from "./scope.ts";

export interface SubscriptionOptions extends DelivererOptions {
  signingKey?: string;
  publishedKeys?: string;
  tokenTtlSeconds: number;
}

/** A request's caller, as the guard authenticated it; undefined when auth is off. */
export type Caller = Principal | undefined;

const MAX_ID = 256;
const MAX_WORKER = 256;

function checkId(id: string): string {
  if (id.length === 0 || id.length > MAX_ID || hasControlChars(id)) {
    throw BadRequestCode(`subscription id must be 1 to ${MAX_ID} printable characters`);
  }
  return id;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export class Subscriptions {
  readonly channel: string;
  readonly instanceId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly trigger: WakeTrigger;
  readonly deliverer: Deliverer;
  private listener?: Listener;
  private readonly failed: FailureReporter;

  private constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
    store: Store,
    private readonly opts: SubscriptionOptions,
  ) {
    this.channel = subscriptionsChannel(db.schema);
    this.failed = reportFailures(opts.logger);
    this.trigger = new WakeTrigger(db, opts.wakeIntervalMs, this.failed);
    this.deliverer = new Deliverer(db, store, keys, this.trigger, this.channel, this.instanceId, { ...opts, failed: this.failed });
    this.trigger.onWoke = (w, sentAt) => this.deliverer.woke(w, sentAt);
  }

  static async start(db: Db, store: Store, opts: SubscriptionOptions): Promise<Subscriptions> {
    const keys = await KeyRing.load(db, opts);
    const subs = new Subscriptions(db, keys, store, opts);
    subs.listener = await db.listen(
      subs.channel,
      (payload) => {
        if (payload === "links") subs.trigger.reload().catch((err) => subs.failed("subscription links reload", err));
        else subs.deliverer.kick();
      },
      // (Re)connected: anything notified meanwhile is lost, so reload and look.
      () => {
        subs.trigger.reload().catch((err) => subs.failed("subscription links reload", err));
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
    checkId(id);
    const c = parseSubscriptionConfig(parseJsonBody(bytes), { allowPrivate: this.opts.allowPrivateTargets === true });
    if (caller) checkCreate(caller, c);
    const result = await createSubscription(this.db, this.channel, {
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
    const s = await findSubscription(this.db, checkId(id));
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
    if (!(await deleteSubscription(this.db, this.channel, checkId(id)))) throw NotFound(id);
  }

  async addStreams(id: string, bytes: Uint8Array, caller: Caller): Promise<void> {
    checkId(id);
    const body = parseJsonBody(bytes);
    if (!isObject(body) || Object.keys(body).some((k) => k !== "streams")) throw BadRequestCode('body must be {"streams": [...]}');
    const paths = parseStreamList(body.streams);
    if (paths.length === 0) throw BadRequestCode("streams must name at least one stream");
    if (caller) {
      const s = await findSubscription(this.db, id);
      if (!s) throw NotFound(id);
      checkStreams(caller, paths, this.scope(s.scope));
    }
    if (!(await addExplicitLinks(this.db, this.channel, id, paths.map(streamKey)))) throw NotFound(id);
    await this.trigger.reload();
  }

  async removeStream(id: string, encodedPath: string): Promise<void> {
    checkId(id);
    let decoded: string;
    try {
      decoded = decodeURIComponent(encodedPath);
    } catch {
      throw BadRequestCode("stream path is not valid URL encoding");
    }
    if (!(await removeExplicitLink(this.db, this.channel, id, streamKey(relativePath(decoded, "stream path"))))) throw NotFound(id);
    await this.trigger.reload();
  }

  async claim(id: string, bytes: Uint8Array, caller: Caller): Promise<Record<string, unknown>> {
    checkId(id);
    const body = parseJsonBody(bytes);
    const worker = isObject(body) ? body.worker : undefined;
    if (typeof worker !== "string" || worker.length === 0 || worker.length > MAX_WORKER || hasControlChars(worker)) {
      throw BadRequestCode(`worker must be a non-empty string of at most ${MAX_WORKER} characters`);
    }
    const r = await claimWake(this.db, id, worker, (scope, links) => (scope === null ? [] : outOfScope(links, this.scope(scope))));
    if (r.kind === "busy") {
      throw new SubscriptionError("ALREADY_CLAIMED", "another worker holds the lease", { current_holder: r.holder, generation: r.generation });
    }
    if (r.kind === "idle") throw new SubscriptionError("NO_PENDING_WORK", "the subscription has no pending work");
    this.deliverer.watchLease(id, r.leaseTtlMs);
    const token = await this.keys.issueToken({ subscription: id, incarnation: r.incarnation, generation: r.generation, wakeId: r.wakeId });
    // Links outside the subscription's scope are gone; a worker with narrower grants than its creator sees less still.
    const links = visibleLinks(r.links, callerReader(caller));
    return { wake_id: r.wakeId, generation: r.generation, token, streams: streamEntries({ links }), lease_ttl_ms: r.leaseTtlMs };
  }

  /**
   * The signed token of a callback, ack or release (Authorization header only, PROTOCOL 12.9),
   * checked before its body is read: a caller without a valid token costs no body read.
   */
  async verifyWakeToken(id: string, authorization: string | null): Promise<TokenClaims> {
    checkId(id);
    const m = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!m) throw new SubscriptionError("TOKEN_INVALID", "Authorization: Bearer <token> is required");
    return await this.keys.verifyToken(m[1], id);
  }

  /** Webhook callback (`webhook`) or pull-wake ack (`pull-wake`), with its verified token. */
  async ack(type: "webhook" | "pull-wake", id: string, token: TokenClaims, bytes: Uint8Array) {
    const call = this.wakeCall(type, id, token, bytes, true);
    const sentAt = performance.now();
    const { nextWake, leaseMs } = await applyWakeCall(this.db, call, this.opts.wakeIntervalMs);
    if (leaseMs !== undefined) this.deliverer.watchLease(id, leaseMs);
    // A heartbeat (not done) leaves the wake in flight and starts none.
    const next = call.done && (await this.deliverer.afterEnd(id, nextWake && { wake: nextWake, sentAt }));
    return { ok: true, next_wake: next };
  }

  async release(id: string, token: TokenClaims, bytes: Uint8Array): Promise<void> {
    const call = this.wakeCall("pull-wake", id, token, bytes, false);
    const sentAt = performance.now();
    const { nextWake } = await releaseWake(this.db, call, this.opts.wakeIntervalMs);
    await this.deliverer.afterEnd(id, nextWake && { wake: nextWake, sentAt });
  }

  /** Body shape and ack offsets of a call whose token was verified (verifyWakeToken). */
  private wakeCall(type: WakeCall["type"], id: string, token: TokenClaims, bytes: Uint8Array, acks: boolean): WakeCall {
    const body = parseJsonBody(bytes);
    if (!isObject(body)) throw BadRequestCode("request body must be a JSON object");
    const { wake_id, generation, done } = body;
    if (typeof wake_id !== "string" || !/^[\w-]{1,128}$/.test(wake_id)) throw BadRequestCode("wake_id must be a wake id this server issued");
    if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0) {
      throw BadRequestCode("generation must be a non-negative integer");
    }
    if (done !== undefined && typeof done !== "boolean") throw BadRequestCode("done must be a boolean");
    const positions = new Map<string, number>();
    if (body.acks !== undefined) {
      if (!acks) throw BadRequestCode("release takes no acks");
      if (!Array.isArray(body.acks)) throw BadRequestCode("acks must be an array");
      body.acks.forEach((a: unknown, i: number) => {
        if (!isObject(a)) throw BadRequestCode(`acks[${i}] must be an object`);
        const key = streamKey(relativePath(a.stream ?? a.path, `acks[${i}].stream`));
        if (typeof a.offset !== "string" || !isOffsetToken(a.offset) || !Number.isFinite(offsetPosition(a.offset))) {
          throw BadRequestCode(`acks[${i}].offset must be an offset this server issued`);
        }
        positions.set(key, Math.max(positions.get(key) ?? 0, offsetPosition(a.offset)));
      });
    }
    return { id, type, token, generation, wakeId: wake_id, acks: positions, done: done === true };
  }
}

export type { LinkState };
