// Worker calls (PROTOCOL 7.1-7.3): webhook callbacks, pull-wake claim, ack (heartbeat or
// done) and release. Each runs in one transaction holding the subscription row, checks the
// fence (protocol/wake-fence.ts: incarnation, generation, wake id, live lease) against the
// row, and only then moves cursors. The caller has verified the token's signature; this
// checks what it binds.
import { NotFound } from "../../protocol/subscription-requests.ts";
import { SubscriptionError } from "../../protocol/errors.ts";
import { checkAcks, checkFence, type FenceRow, type WakeCall } from "../../protocol/wake-fence.ts";
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { ackPositions, wakeSubscription } from "./wakes.ts";
import { dropLinks } from "./subscriptions.ts";
import { CLEAR_WAKE, HAS_PENDING, LINKS_JSON, type LinkState, NEW_WAKE_ID, parseLinks, PREPARED, SNAPSHOT, type Woken } from "./sql.ts";

interface Locked extends FenceRow {
  leaseTtlMs: number;
  scope: string | null;
  links: LinkState[];
}

async function lockSubscription(q: Queryable, id: string): Promise<Locked | undefined> {
  const rows = await q.rows<Record<string, unknown>>(sql`
    SELECT s.incarnation, s.type, s.generation, s.wake_id, s.holder, s.lease_ttl_ms,
           coalesce(s.lease_until < clock_timestamp(), false) AS lapsed, s.scope::text AS scope, ${LINKS_JSON} AS links
    FROM ds_subscriptions s WHERE s.id = ${id} AND s.deleted_at IS NULL FOR UPDATE`);
  if (rows.length === 0) return undefined;
  const r = rows[0];
  return {
    incarnation: Number(r.incarnation),
    type: String(r.type),
    generation: Number(r.generation),
    wakeId: (r.wake_id as string | null) ?? null,
    holder: (r.holder as string | null) ?? null,
    leaseLapsed: Boolean(r.lapsed),
    leaseTtlMs: Number(r.lease_ttl_ms),
    scope: (r.scope as string | null) ?? null,
    links: parseLinks(r.links),
  };
}

export type { WakeCall };

/**
 * Ack (and heartbeat) for callbacks and pull-wake acks; returns the wake a done call started,
 * or how long the lease a heartbeat extended now runs.
 */
export async function applyWakeCall(db: Db, c: WakeCall, intervalMs: number): Promise<{ nextWake?: Woken; leaseMs?: number }> {
  return db.tx(async (q) => {
    const s = await lockFenced(q, c);
    checkAcks(s.links, c.acks);
    await ackPositions(q, c.id, c.acks);
    if (!c.done) {
      await q.rows(sql`UPDATE ds_subscriptions s SET lease_until = clock_timestamp() + s.lease_ttl_ms * interval '1 millisecond'
        WHERE s.id = ${c.id}`, PREPARED);
      return { leaseMs: s.leaseTtlMs };
    }
    await q.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE s.id = ${c.id}`, PREPARED);
    return { nextWake: await wakeSubscription(q, c.id, intervalMs) };
  });
}

/** Pull-wake release without ack: the wake ends, and a new one starts if work is pending. */
export async function releaseWake(db: Db, c: WakeCall, intervalMs: number): Promise<{ nextWake?: Woken }> {
  return db.tx(async (q) => {
    await lockFenced(q, c);
    await q.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE s.id = ${c.id}`, PREPARED);
    return { nextWake: await wakeSubscription(q, c.id, intervalMs) };
  });
}

async function lockFenced(q: Queryable, c: WakeCall): Promise<Locked> {
  const s = await lockSubscription(q, c.id);
  if (!s) throw NotFound(c.id);
  checkFence(s, c);
  return s;
}

/** The keys of links outside the subscription's scope (JSON text, null without auth). */
export type OutOfScope = (scope: string | null, links: LinkState[]) => string[];

export type ClaimResult =
  | { kind: "claimed"; incarnation: number; generation: number; wakeId: string; leaseTtlMs: number; links: LinkState[] }
  | { kind: "busy"; holder: string; generation: number }
  | { kind: "idle" };

/**
 * A pull-wake worker claims the subscription (PROTOCOL 7.2): it takes the wake in flight,
 * or starts one when work is pending; a held, unexpired lease refuses it.
 */
export async function claimWake(db: Db, id: string, worker: string, outOfScope: OutOfScope): Promise<ClaimResult> {
  return db.tx(async (q): Promise<ClaimResult> => {
    const s = await lockSubscription(q, id);
    if (!s) throw NotFound(id);
    if (s.type !== "pull-wake") throw new SubscriptionError("INVALID_REQUEST", "not a pull-wake subscription");
    // Before anything looks for pending work or snapshots tails: streams outside the scope are no work.
    const dropped = outOfScope(s.scope, s.links);
    await dropLinks(q, id, dropped);
    if (s.holder !== null && !s.leaseLapsed) return { kind: "busy", holder: s.holder, generation: s.generation };
    if (s.holder !== null || s.leaseLapsed) await q.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE s.id = ${id}`, PREPARED);
    const wakeInFlight = s.wakeId !== null && s.holder === null && !s.leaseLapsed;
    // A wake in flight is work, unless what it was for just fell out of scope.
    const needsPending = !wakeInFlight || dropped.length > 0;
    // A new wake is started here directly: its event would be stale the moment it is written.
    const start = wakeInFlight ? sql`` : sql`generation = s.generation + 1, wake_id = ${NEW_WAKE_ID},`;
    const rows = await q.rows<Record<string, unknown>>(sql`
      UPDATE ds_subscriptions s SET ${start} holder = ${worker},
        lease_until = clock_timestamp() + s.lease_ttl_ms * interval '1 millisecond',
        deliver_at = NULL, attempt = 0, status = 'active', delivery_claim = NULL, delivering_until = NULL,
        wake_snapshot = ${SNAPSHOT}
      WHERE s.id = ${id} ${needsPending ? sql`AND ${HAS_PENDING}` : sql``}
      RETURNING s.incarnation, s.generation, s.wake_id, s.lease_ttl_ms, ${LINKS_JSON} AS links`);
    if (rows.length === 0) {
      // The wake in flight was for streams now out of scope: it ends, so the next append starts one.
      if (wakeInFlight) await q.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE s.id = ${id}`, PREPARED);
      return { kind: "idle" };
    }
    const r = rows[0];
    return {
      kind: "claimed",
      incarnation: Number(r.incarnation),
      generation: Number(r.generation),
      wakeId: String(r.wake_id),
      leaseTtlMs: Number(r.lease_ttl_ms),
      links: parseLinks(r.links),
    };
  });
}
