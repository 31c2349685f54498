// Wakes and their delivery (PROTOCOL 7). Every transition is a conditional statement on the
// subscription row, so any number of instances may try it and exactly one succeeds:
// starting a wake requires no wake in flight and no holder; a delivery is claimed with
// FOR UPDATE SKIP LOCKED plus a delivery lease (no row lock is held while the HTTP call
// runs); finishing requires the claim still to be ours. Deadlines use the database clock.
import { type Db, type Queryable, sql } from "./db.ts";
import { pgArray } from "./pg-array.ts";
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
} from "./subscription-sql.ts";

/**
 * Starts a wake for each idle subscription with pending work on one of these streams (the
 * streams just appended to), and returns them. Only those streams' links are looked at:
 * pending work on a subscription's other streams is some other trigger's business. (Looking
 * at every link of every candidate subscription read thousands of buffers per call under load.)
 *
 * No NOTIFY: the caller's own deliverer claims what it started. A notifying transaction
 * holds Postgres's database-wide notify lock through its commit's WAL flush, so every
 * notifying commit (appends' live-reader notifications included) queues behind it; under a
 * busy subscription load these statements waited ~50 ms on that lock. Another instance
 * takes a wake over at its next tick if this one dies before claiming it.
 */
export async function wakeForStreams(db: Db, keys: string[], intervalMs: number): Promise<Woken[]> {
  if (keys.length === 0) return [];
  const rows = await db.rows<Record<string, unknown>>(sql`
    WITH p AS (
      SELECT DISTINCT l.subscription_id AS id FROM ds_subscription_links l
      WHERE l.stream_path = ANY(${pgArray(keys)}::text[]) AND ${LINK_TAIL} > l.acked_pos)
    UPDATE ds_subscriptions s SET ${newWake(intervalMs)} FROM p WHERE s.id = p.id AND ${IDLE} RETURNING ${WOKEN}`, PREPARED);
  return rows.map(toWoken);
}

/** Starts a wake for one subscription if it is idle with pending work (the caller delivers it: see wakeForStreams). */
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

export interface DueDelivery {
  id: string;
  incarnation: number;
  type: "webhook" | "pull-wake";
  webhookUrl: string | null;
  wakeStream: string | null;
  generation: number;
  wakeId: string;
  baseUrl: string;
  attempt: number;
  claim: string;
  links: LinkState[];
}

/**
 * Claims up to `limit` due deliveries for `claimPrefix`: each gets a delivery lease of
 * `leaseMs` and a snapshot of its streams' tails (what `{done: true}` will ack).
 */
export async function claimDueDeliveries(db: Db, claimPrefix: string, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  // Each link's tail is looked up once (OFFSET 0 keeps the subquery whole) and gives both
  // the snapshot and the links the delivery reports.
  const rows = await db.rows<Record<string, unknown>>(sql`
    WITH d AS (
      SELECT id FROM ds_subscriptions
      WHERE deliver_at <= clock_timestamp() AND deleted_at IS NULL AND wake_id IS NOT NULL
        AND (delivering_until IS NULL OR delivering_until < clock_timestamp())
      ORDER BY deliver_at LIMIT ${limit} FOR UPDATE SKIP LOCKED),
    per AS (
      SELECT d.id, (
        SELECT jsonb_build_array(coalesce(jsonb_object_agg(x.stream_path, x.tail), '{}'::jsonb),
          coalesce(jsonb_agg(jsonb_build_array(x.stream_path, x.explicit, x.acked_pos, x.tail, x.earliest) ORDER BY x.stream_path), '[]'::jsonb))
        FROM (SELECT l.stream_path, l.explicit, l.acked_pos, coalesce(${LINK_TAIL}, 0) AS tail, coalesce(${LINK_EARLIEST}, 0) AS earliest
              FROM ds_subscription_links l WHERE l.subscription_id = d.id OFFSET 0) x) AS both
      FROM d)
    UPDATE ds_subscriptions s
    SET delivery_claim = ${claimPrefix} || ':' || s.id || ':' || s.generation || ':' || (s.attempt + 1),
        delivering_until = clock_timestamp() + ${leaseMs} * interval '1 millisecond',
        wake_snapshot = per.both -> 0
    FROM per WHERE s.id = per.id
    RETURNING s.id, s.incarnation, s.type, s.webhook_url, s.wake_stream, s.generation, s.wake_id, s.base_url, s.attempt,
              s.delivery_claim, per.both -> 1 AS links`, PREPARED);
  return rows.map((r) => ({
    id: String(r.id),
    incarnation: Number(r.incarnation),
    type: r.type as DueDelivery["type"],
    webhookUrl: (r.webhook_url as string | null) ?? null,
    wakeStream: (r.wake_stream as string | null) ?? null,
    generation: Number(r.generation),
    wakeId: String(r.wake_id),
    baseUrl: String(r.base_url),
    attempt: Number(r.attempt),
    claim: String(r.delivery_claim),
    links: parseLinks(r.links),
  }));
}

const OURS = (d: DueDelivery) => sql`s.id = ${d.id} AND s.delivery_claim = ${d.claim} AND s.wake_id = ${d.wakeId} AND s.deleted_at IS NULL`;

/**
 * Delivered. A webhook's lease starts now (its worker calls back within it); a pull-wake
 * wake stays in flight, unleased, until a worker claims it. False if the claim was lost.
 */
export async function deliveryDone(db: Db, d: DueDelivery): Promise<boolean> {
  const lease = d.type === "webhook" ? sql`clock_timestamp() + s.lease_ttl_ms * interval '1 millisecond'` : sql`s.lease_until`;
  const rows = await db.rows(sql`
    UPDATE ds_subscriptions s SET deliver_at = NULL, attempt = 0, status = 'active', delivery_claim = NULL,
      delivering_until = NULL, lease_until = ${lease}
    WHERE ${OURS(d)} RETURNING s.id`, PREPARED);
  return rows.length > 0;
}

/**
 * The webhook answered `{done: true}`: ack the snapshot, end the wake, and start the next
 * one at once if more is pending, in ONE statement (one round trip, one commit: a busy
 * subscription goes through this many times a second). The links' new cursors are not
 * visible inside the statement, so "pending" compares each tail with the larger of the old
 * cursor and the snapshot's position, which is what the cursor becomes. The next wake is the
 * caller's to deliver (no NOTIFY: see wakeForStreams).
 */
export async function deliveryFinished(db: Db, d: DueDelivery, intervalMs: number): Promise<{ next?: Woken }> {
  const paced = pacedWake(intervalMs);
  const rows = await db.rows<Record<string, unknown>>(sql`
    WITH mine AS (
      SELECT s.id, s.wake_snapshot FROM ds_subscriptions s WHERE ${OURS(d)} FOR UPDATE),
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
  return rows.length > 0 && rows[0].rewoke === true ? { next: toWoken(rows[0]) } : {};
}

/** Nothing was pending after all (a wake that raced an ack): the wake ends undelivered. */
export async function deliveryDropped(db: Db, d: DueDelivery): Promise<void> {
  await db.rows(sql`UPDATE ds_subscriptions s SET ${CLEAR_WAKE} WHERE ${OURS(d)}`, PREPARED);
}

/** Failed: the retry is scheduled `delayMs` from now by the database clock (status failed). */
export async function deliveryFailed(db: Db, d: DueDelivery, delayMs: number): Promise<void> {
  await db.rows(sql`
    UPDATE ds_subscriptions s SET attempt = s.attempt + 1, status = 'failed', delivery_claim = NULL, delivering_until = NULL,
      deliver_at = clock_timestamp() + ${Math.round(delayMs)} * interval '1 millisecond'
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
