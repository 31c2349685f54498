// The subscriptions room's facade: everything subscriptions/ asks of the database, bound to
// one database, schema, notification channel and wake pacing. subscriptions/ imports only
// this file (and types) from store/ (.dependency-cruiser.cjs: subscriptions-through-facade).
import type { Db } from "../driver/db.ts";
import type { Listener } from "../driver/listener.ts";
import { applyWakeCall, claimWake, type ClaimResult, type OutOfScope, releaseWake, type WakeCall } from "./acks.ts";
import { type ClaimLimits, claimDueDeliveries, type DueDelivery, wakeAndClaim } from "./claims.ts";
import { ensureSigningKey, type StoredKey } from "./signing-keys.ts";
import { subscriptionsChannel, type Woken } from "./sql.ts";
import {
  addExplicitLinks,
  createSubscription,
  type CreateResult,
  deleteSubscription,
  dropLinks,
  findSubscription,
  linkCreatedStream,
  loadTriggerSet,
  type NewSubscription,
  removeExplicitLink,
  type SubscriptionRecord,
} from "./subscriptions.ts";
import {
  deliveryDone,
  deliveryDropped,
  deliveryFailed,
  deliveryFinished,
  endLapsedDelivery,
  expireLease,
  expireLeases,
  wakeAllPending,
  wakeSubscription,
} from "./wakes.ts";

export class SubscriptionStore {
  /** The subscriptions notification channel ("links": links changed; anything else: a wake is due). */
  readonly channel: string;

  /** `wakeIntervalMs`: a subscription is woken at most once per this many milliseconds (SUBSCRIPTION_WAKE_INTERVAL_MS). */
  constructor(
    private readonly db: Db,
    private readonly wakeIntervalMs: number,
  ) {
    this.channel = subscriptionsChannel(db.schema);
  }

  /** Listens on the channel; `onListen` runs after every (re)connect (anything notified meanwhile is lost). */
  listen(onPayload: (payload: string) => void, onListen: () => void): Promise<Listener> {
    return this.db.listen(this.channel, onPayload, onListen);
  }

  // Lifecycle (store/subscriptions/subscriptions.ts)
  create(n: NewSubscription): Promise<CreateResult> {
    return createSubscription(this.db, this.channel, n);
  }
  find(id: string): Promise<SubscriptionRecord | undefined> {
    return findSubscription(this.db, id);
  }
  delete(id: string): Promise<boolean> {
    return deleteSubscription(this.db, this.channel, id);
  }
  addExplicitLinks(id: string, keys: string[]): Promise<boolean> {
    return addExplicitLinks(this.db, this.channel, id, keys);
  }
  removeExplicitLink(id: string, key: string): Promise<boolean> {
    return removeExplicitLink(this.db, this.channel, id, key);
  }
  dropLinks(id: string, keys: string[]): Promise<void> {
    return dropLinks(this.db, id, keys);
  }
  linkCreatedStream(key: string, fromPos: number): Promise<number> {
    return linkCreatedStream(this.db, key, fromPos);
  }
  loadTriggerSet(): Promise<{ keys: [string, string][]; patterns: [string, string][] }> {
    return loadTriggerSet(this.db);
  }

  // Wakes (store/subscriptions/claims.ts, wakes.ts)
  wakeAndClaim(keys: string[], limits: ClaimLimits): Promise<{ woken: Woken[]; claimed: DueDelivery[] }> {
    return wakeAndClaim(this.db, keys, this.wakeIntervalMs, limits);
  }
  wakeSubscription(id: string): Promise<Woken | undefined> {
    return wakeSubscription(this.db, id, this.wakeIntervalMs);
  }
  wakeAllPending(): Promise<Woken[]> {
    return wakeAllPending(this.db, this.channel, this.wakeIntervalMs);
  }
  claimDue(limits: ClaimLimits): Promise<DueDelivery[]> {
    return claimDueDeliveries(this.db, limits);
  }
  expireLeases(): Promise<{ expired: number; woken: Woken[] }> {
    return expireLeases(this.db, this.channel, this.wakeIntervalMs);
  }
  expireLease(id: string): Promise<{ expired: boolean; leaseMs?: number }> {
    return expireLease(this.db, id);
  }

  // Outcomes of one delivery (store/subscriptions/wakes.ts)
  deliveryDone(d: DueDelivery): Promise<number | undefined> {
    return deliveryDone(this.db, d);
  }
  deliveryFinished(d: DueDelivery): Promise<{ ended: boolean; next?: Woken }> {
    return deliveryFinished(this.db, d, this.wakeIntervalMs);
  }
  deliveryDropped(d: DueDelivery): Promise<void> {
    return deliveryDropped(this.db, d);
  }
  deliveryFailed(d: DueDelivery, delayMs: number): Promise<void> {
    return deliveryFailed(this.db, d, delayMs);
  }
  endLapsedDelivery(d: DueDelivery): Promise<boolean> {
    return endLapsedDelivery(this.db, d);
  }

  // Worker calls (store/subscriptions/acks.ts)
  applyWakeCall(c: WakeCall): Promise<{ nextWake?: Woken; leaseMs?: number }> {
    return applyWakeCall(this.db, c, this.wakeIntervalMs);
  }
  releaseWake(c: WakeCall): Promise<{ nextWake?: Woken }> {
    return releaseWake(this.db, c, this.wakeIntervalMs);
  }
  claimWake(id: string, worker: string, outOfScope: OutOfScope): Promise<ClaimResult> {
    return claimWake(this.db, id, worker, outOfScope);
  }

  // Signing keys (store/subscriptions/signing-keys.ts)
  ensureSigningKey(generate: () => Promise<Omit<StoredKey, "retired">>): Promise<StoredKey[]> {
    return ensureSigningKey(this.db, generate);
  }
}

export type { ClaimLimits, ClaimResult, DueDelivery, NewSubscription, SubscriptionRecord, WakeCall, Woken };
export type { LinkState } from "./sql.ts";
export type { Listener };
