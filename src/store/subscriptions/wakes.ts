// Wakes and their delivery (PROTOCOL 7). Every transition is a conditional statement on the
// subscription row, so any number of instances may try it and exactly one succeeds:
// starting a wake requires no wake in flight and no holder; a delivery is claimed with
// FOR UPDATE SKIP LOCKED plus a delivery lease (no row lock is held while the HTTP call
// runs); finishing requires the claim still to be ours. Deadlines use the database clock.
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";
import {
  CLEAR_WAKE,
  HAS_PENDING,
  IDLE,
  LINK_EARLIEST,
  LINK_TAIL,
  type LinkState,
  NEW_WAKE_ID,
  newWake,
  parseLinks,
  PREPARED,
  toWoken,
  pacedWake,
  WOKEN,
  type Woken,
} from "./sql.ts";
import { type DueDelivery, msUntil } from "./claims.ts";

/** Starts a wake for one subscription if it is idle with pending work (the caller delivers it: see claims.ts wakeAndClaim). */
export async function wakeSubscription(q: Queryable, id: string, intervalMs: number): Promise<Woken | undefined> {
  const rows = await q.rows<Record<string, unknown>>(sql`
    UPDATE ds_subscriptions s SET ${newWake(intervalMs)} WHERE s.id = ${id} AND ${IDLE} AND ${HAS_PENDING}
    RETURNING ${WOKEN}`, PREPARED);
  return rows.length > 0 ? toWoken(rows[0]) : undefined;
}

/** "A wake is due" on the subscriptions channel: every instance's deliverer looks. */
export async function notifyDue(q: Queryable, channel: string): Promise<void> {
  await q.rows(sql`SELECT pg_notify(${channel}, 'due')`, PREPARED);
}

/**
 * Lapsed leases (PROTOCOL 7.3): holder and wake are cleared, and a new wake starts where
 * work is pending (each in its own statement after the clearing one committed, so nothing
 * appended meanwhile is missed). Returns how many leases lapsed, and the wakes started.
 */
export async function expireLeases(db: Db, channel: string, intervalMs: number): Promise<{ expired: number; woken: Woken[] }> {
  const expired = await db.rows<{ id: string }>(sql`
    UPDATE ds_subscriptions s SET ${CLEAR_WAKE}
    WHERE s.deleted_at IS NULL AND s.lease_until < clock_timestamp() RETURNING s.id`, PREPARED);
  const woken: Woken[] = [];
  for (const r of expired) {
    const w = await wakeSubscription(db, r.id, intervalMs);
    if (w) woken.push(w);
  }
  if (woken.length > 0) await notifyDue(db, channel);
  return { expired: expired.length, woken };
}

/**
 * The lease of `id` lapsed by this instance's timer: if it has by the database clock, the
 * wake ends (holder and wake token cleared, PROTOCOL 7.3) and `expired` is true; the caller
 * starts the next wake if work is pending. Otherwise `leaseMs` says how long it has left
 * (a callback or heartbeat extended it), undefined when no lease is held.
 */
export async function expireLease(db: Db, id: string): Promise<{ expired: boolean; leaseMs?: number }> {
  const [r] = await db.rows<{ expired: number; lease_ms: number | null }>(sql`
    WITH x AS (
      UPDATE ds_subscriptions s SET ${CLEAR_WAKE}
      WHERE s.id = ${id} AND s.deleted_at IS NULL AND s.lease_until <= clock_timestamp() RETURNING s.id)
    SELECT (SELECT count(*) FROM x)::int AS expired,
           (SELECT CASE WHEN s.lease_until IS NOT NULL THEN ${msUntil(sql`s.lease_until`)} END
            FROM ds_subscriptions s WHERE s.id = ${id} AND s.deleted_at IS NULL) AS lease_ms`, PREPARED);
  if (r.expired > 0) return { expired: true };
  return { expired: false, leaseMs: r.lease_ms === null ? undefined : Number(r.lease_ms) };
}

/**
 * The backstop for lost triggers (an instance died between commit and trigger): wakes every
 * idle subscription with pending work. One instance at a time runs it.
 */
export async function wakeAllPending(db: Db, channel: string, intervalMs: number): Promise<Woken[]> {
  return db.tx(async (q) => {
    const [lock] = await q.rows<{ ok: boolean }>(sql`SELECT pg_try_advisory_xact_lock(hashtext(${`ds_subs_backstop:${db.schema}`})) AS ok`, PREPARED);
    if (!lock.ok) return [];
    const rows = await q.rows<Record<string, unknown>>(
      sql`UPDATE ds_subscriptions s SET ${newWake(intervalMs)} WHERE ${IDLE} AND ${HAS_PENDING} RETURNING ${WOKEN}`,
      PREPARED,
    );
    if (rows.length > 0) await notifyDue(q, channel);
    return rows.map(toWoken);
  });
}

const OURS = (d: DueDelivery) => sql`s.id = ${d.id} AND s.delivery_claim = ${d.claim} AND s.wake_id = ${d.wakeId} AND s.deleted_at IS NULL`;

/**
 * Delivered. A webhook wake's lease runs on from its send (PROTOCOL 7.3: extended only by
 * callbacks); a pull-wake wake stays in flight, unleased, until a worker claims it. Returns
 * the milliseconds left of the lease (undefined without one, or when the claim was lost).
 */
export async function deliveryDone(db: Db, d: DueDelivery): Promise<number | undefined> {
  const rows = await db.rows<{ lease_ms: number | null }>(sql`
    UPDATE ds_subscriptions s SET deliver_at = NULL, attempt = 0, status = 'active', delivery_claim = NULL, delivering_until = NULL
    WHERE ${OURS(d)} RETURNING CASE WHEN s.lease_until IS NOT NULL THEN ${msUntil(sql`s.lease_until`)} END AS lease_ms`, PREPARED);
  return rows.length > 0 && rows[0].lease_ms !== null ? Number(rows[0].lease_ms) : undefined;
}

/**
 * The wake's lease lapsed while it was being sent (or just before its answer came): the
 * wake ends as a lapsed lease does (PROTOCOL 7.3); the caller starts the next one if work
 * is pending. False when the lease is live or the claim was lost.
 */
export async function endLapsedDelivery(db: Db, d: DueDelivery): Promise<boolean> {
  const rows = await db.rows(sql`
    UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE ${OURS(d)} AND s.lease_until <= clock_timestamp() RETURNING s.id`, PREPARED);
  return rows.length > 0;
}

/**
 * The webhook answered `{done: true}`: ack the snapshot, end the wake, and start the next
 * one at once if more is pending, in ONE statement (one round trip, one commit: a busy
 * subscription goes through this many times a second). The links' new cursors are not
 * visible inside the statement, so "pending" compares each tail with the larger of the old
 * cursor and the snapshot's position, which is what the cursor becomes. The next wake is the
 * caller's to deliver (no NOTIFY: see claims.ts wakeAndClaim). Not ended (false) when the claim
 * was lost or the lease lapsed before the answer came: a late `done` acks nothing.
 */
export async function deliveryFinished(db: Db, d: DueDelivery, intervalMs: number): Promise<{ ended: boolean; next?: Woken }> {
  const paced = pacedWake(intervalMs);
  const rows = await db.rows<Record<string, unknown>>(sql`
    WITH mine AS (
      SELECT s.id, s.wake_snapshot FROM ds_subscriptions s
      WHERE ${OURS(d)} AND (s.lease_until IS NULL OR s.lease_until > clock_timestamp()) FOR UPDATE),
    acks AS (
      SELECT a.key, a.pos::int8 AS pos FROM mine, jsonb_each_text(coalesce(mine.wake_snapshot, '{}'::jsonb)) AS a(key, pos)),
    acked AS (
      UPDATE ds_subscription_links l SET acked_pos = greatest(l.acked_pos, acks.pos)
      FROM acks WHERE l.subscription_id = ${d.id} AND l.stream_path = acks.key RETURNING 1),
    pending AS (
      SELECT EXISTS (
        SELECT 1 FROM ds_subscription_links l LEFT JOIN acks ON acks.key = l.stream_path
        WHERE l.subscription_id = ${d.id} AND ${LINK_TAIL} > greatest(l.acked_pos, coalesce(acks.pos, l.acked_pos))) AS yes),
    ended AS (
      UPDATE ds_subscriptions s SET
        generation = CASE WHEN p.yes THEN s.generation + 1 ELSE s.generation END,
        wake_id = CASE WHEN p.yes THEN ${NEW_WAKE_ID} END,
        deliver_at = CASE WHEN p.yes THEN ${paced.due} END,
        next_wake_at = CASE WHEN p.yes THEN ${paced.schedule} ELSE s.next_wake_at END,
        wake_snapshot = NULL, holder = NULL, lease_until = NULL, attempt = 0, status = 'active',
        delivery_claim = NULL, delivering_until = NULL
      FROM mine, pending p WHERE s.id = mine.id
      RETURNING ${WOKEN}, p.yes AS rewoke)
    SELECT * FROM ended`, PREPARED);
  // (acked is a data-modifying CTE: Postgres runs it whether or not anything reads it.)
  if (rows.length === 0) return { ended: false };
  return rows[0].rewoke === true ? { ended: true, next: toWoken(rows[0]) } : { ended: true };
}

/** Nothing was pending after all (a wake that raced an ack): the wake ends undelivered. */
export async function deliveryDropped(db: Db, d: DueDelivery): Promise<void> {
  await db.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE ${OURS(d)}`, PREPARED);
}

/**
 * Failed: the retry is scheduled `delayMs` from now by the database clock (status failed).
 * A webhook retry is a new wake (next generation, new wake id): the failed send's wake ends
 * with it, so its token is fenced and no two sends ever share a generation (PROTOCOL 7.3:
 * generation increments for every wake). A pull-wake retry writes the same wake event
 * (nobody has seen it yet).
 */
export async function deliveryFailed(db: Db, d: DueDelivery, delayMs: number): Promise<void> {
  const webhook = sql`s.type = 'webhook'`;
  await db.rows(sql`
    UPDATE ds_subscriptions s SET attempt = s.attempt + 1, status = 'failed', delivery_claim = NULL, delivering_until = NULL,
      deliver_at = clock_timestamp() + ${Math.round(delayMs)} * interval '1 millisecond',
      generation = CASE WHEN ${webhook} THEN s.generation + 1 ELSE s.generation END,
      wake_id = CASE WHEN ${webhook} THEN ${NEW_WAKE_ID} ELSE s.wake_id END,
      wake_snapshot = CASE WHEN ${webhook} THEN NULL ELSE s.wake_snapshot END,
      lease_until = CASE WHEN ${webhook} THEN NULL ELSE s.lease_until END
    WHERE ${OURS(d)}`, PREPARED);
}

/** Moves cursors forward only: an ack never lowers a position. */
export async function ackPositions(q: Queryable, id: string, positions: Map<string, number>): Promise<void> {
  if (positions.size === 0) return;
  await q.rows(sql`
    UPDATE ds_subscription_links l SET acked_pos = greatest(l.acked_pos, a.pos)
    FROM unnest(${pgArray([...positions.keys()])}::text[], ${pgArray([...positions.values()])}::int8[]) AS a(key, pos)
    WHERE l.subscription_id = ${id} AND l.stream_path = a.key`, PREPARED);
}
