// Claiming deliveries (PROTOCOL 7): a claim gives a wake a delivery lease and a snapshot of
// its streams' tails (what `{done: true}` will ack), under FOR UPDATE SKIP LOCKED, so across
// all instances one delivers a wake at a time and no row lock is held during the send. Two
// statements claim: the deliverer's look for due wakes (claimDueDeliveries), and the
// trigger's wake after an append, which starts the wakes and claims those due now in one
// statement (wakeAndClaim), so an append's webhook goes out after one commit, not two.
import { type Db, type Queryable, type SQL, sql, type Statement, statement } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";
import { IDLE, LINK_EARLIEST, LINK_TAIL, type LinkState, newWake, parseLinks, toWoken, WOKEN, type Woken } from "./sql.ts";

export interface DueDelivery {
  id: string;
  incarnation: number;
  type: "webhook" | "pull-wake";
  webhookUrl: string | null;
  /** The webhook URL's host[:port], lower-cased (the per-host delivery cap's key). */
  host: string | null;
  wakeStream: string | null;
  generation: number;
  wakeId: string;
  baseUrl: string;
  attempt: number;
  claim: string;
  /** JSON text of the subscription's scope (subscriptions/scope.ts); null when created without auth. */
  scope: string | null;
  links: LinkState[];
  /** Webhooks: milliseconds left of the wake's lease (it started at its first send). */
  leaseMs: number | null;
}

/** The webhook URL's authority (host[:port]), as the per-host cap counts it. */
const HOST = sql`lower(substring(s.webhook_url from '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)'))`;

/** A webhook wake's lease as a send sets it: kept when already running (a resend), else starting now (PROTOCOL 7.3). */
const SEND_LEASE = sql`coalesce(s.lease_until, clock_timestamp() + s.lease_ttl_ms * interval '1 millisecond')`;

export const msUntil = (ts: SQL) => sql`greatest(0, ceil(extract(epoch FROM ${ts} - clock_timestamp()) * 1000))::int`;

export interface ClaimLimits {
  /** Who claims ("<instance>:<n>"): part of each claim's token. */
  prefix: string;
  /** Most deliveries claimed. */
  limit: number;
  /** Most sends open at once to one host from this instance, and how many are open now. */
  perHost: number;
  openByHost: Map<string, number>;
  /** The longest one send may take; its delivery lease adds `marginMs`. */
  timeoutMs: number;
  marginMs: number;
}

/** The snapshot and the reported links of claimed subscription `<alias>.id`, each link's tail looked up once (OFFSET 0 keeps the subquery whole). */
const SNAPSHOT_AND_LINKS = (alias: SQL) => sql`(
  SELECT jsonb_build_array(coalesce(jsonb_object_agg(x.stream_path, x.tail), '{}'::jsonb),
    coalesce(jsonb_agg(jsonb_build_array(x.stream_path, x.explicit, x.acked_pos, x.tail, x.earliest) ORDER BY x.stream_path), '[]'::jsonb))
  FROM (SELECT l.stream_path, l.explicit, l.acked_pos, coalesce(${LINK_TAIL}, 0) AS tail, coalesce(${LINK_EARLIEST}, 0) AS earliest
        FROM ds_subscription_links l WHERE l.subscription_id = ${alias}.id OFFSET 0) x)`;

/**
 * Both claim statements are rendered to text once (per wake interval, a setting) and bound
 * to values per call: building them with drizzle on every call cost more of the server's
 * CPU than sending them.
 */
const ph = (name: string) => sql.placeholder(name);

/** The host caps: candidates ranked per host (`c.rn`) fit what this instance has open to each. */
const HOST_CAPS = {
  join: sql`LEFT JOIN unnest(${ph("hosts")}::text[], ${ph("hostsOpen")}::int[]) AS o(host, n) ON o.host = c.host`,
  fits: sql`(c.host IS NULL OR c.rn <= ${ph("perHost")} - coalesce(o.n, 0))`,
};

/** The values of a claim statement's placeholders for these limits. */
function limitValues(c: ClaimLimits): Record<string, unknown> {
  const hosts = [...c.openByHost.keys()];
  return {
    hosts: pgArray(hosts),
    hostsOpen: pgArray(hosts.map((h) => c.openByHost.get(h)!)),
    perHost: c.perHost,
    limit: c.limit,
    prefix: c.prefix,
    timeoutMs: c.timeoutMs,
    marginMs: c.marginMs,
  };
}

const CLAIMED = sql`s.id, s.incarnation, s.type, s.webhook_url, ${HOST} AS host, s.wake_stream, s.generation, s.wake_id, s.base_url,
  s.attempt, s.delivery_claim, s.scope::text AS scope, CASE WHEN s.type = 'webhook' THEN ${msUntil(sql`s.lease_until`)} END AS lease_ms`;

/**
 * Claims due deliveries: a webhook wake's lease starts with its first send (PROTOCOL 7.3);
 * a wake whose lease has lapsed is not sent again (it is expired instead), and a send never
 * outlives the lease, so its delivery lease (send time plus a margin) ends before anyone
 * else may send the same wake again. No host gets more than `perHost` open sends from this
 * instance (issue 25.8): a receiver that hangs holds that many slots, not all of them.
 */
export async function claimDueDeliveries(db: Db, c: ClaimLimits): Promise<DueDelivery[]> {
  const rows = await db.run<Record<string, unknown>>(CLAIM_DUE, limitValues(c));
  return rows.map(toDue);
}

const CLAIM_DUE: Statement = (() => {
  const due = sql`s.deliver_at <= clock_timestamp() AND s.deleted_at IS NULL AND s.wake_id IS NOT NULL
    AND (s.delivering_until IS NULL OR s.delivering_until < clock_timestamp())
    AND (s.lease_until IS NULL OR s.lease_until > clock_timestamp())`;
  const sendUntil = sql`least(clock_timestamp() + ${ph("timeoutMs")} * interval '1 millisecond', CASE WHEN s.type = 'webhook' THEN ${SEND_LEASE} END)`;
  // Candidates are ranked per host without locks (a window cannot sit beside FOR UPDATE), then locked.
  return statement(sql`
    WITH cand AS (
      SELECT s.id, s.deliver_at, ${HOST} AS host, row_number() OVER (PARTITION BY ${HOST} ORDER BY s.deliver_at, s.id) AS rn
      FROM ds_subscriptions s WHERE ${due}),
    d AS (
      SELECT s.id FROM ds_subscriptions s JOIN cand c ON c.id = s.id ${HOST_CAPS.join}
      WHERE ${HOST_CAPS.fits} AND ${due}
      ORDER BY c.deliver_at LIMIT ${ph("limit")} FOR UPDATE OF s SKIP LOCKED),
    per AS (SELECT d.id, ${SNAPSHOT_AND_LINKS(sql`d`)} AS both FROM d)
    UPDATE ds_subscriptions s
    SET delivery_claim = ${ph("prefix")} || ':' || s.id || ':' || s.generation || ':' || (s.attempt + 1),
        delivering_until = ${sendUntil} + ${ph("marginMs")} * interval '1 millisecond',
        lease_until = CASE WHEN s.type = 'webhook' THEN ${SEND_LEASE} ELSE s.lease_until END,
        wake_snapshot = per.both -> 0
    FROM per WHERE s.id = per.id
    RETURNING ${CLAIMED}, per.both -> 1 AS links`);
})();

/**
 * After appends to `keys`: starts a wake for each idle subscription with pending work on one
 * of these streams (only those streams' links are looked at: pending work elsewhere is some
 * other trigger's business), and claims, in the same statement, those due now that fit the
 * limits, as claimDueDeliveries would a moment later. One commit instead of two before the
 * send (issue 30.3). A wake not due yet (pacing, SUBSCRIPTION_WAKE_INTERVAL_MS) or without
 * room comes back in `woken`, for the deliverer to claim when due.
 *
 * No NOTIFY: this instance delivers what it started. A notifying transaction holds
 * Postgres's database-wide notify lock through its commit's WAL flush, so every notifying
 * commit (appends' live-reader notifications included) queues behind it; under a busy
 * subscription load these statements waited ~50 ms on that lock. Another instance takes a
 * wake over at its next tick if this one dies before sending it (the delivery lease lapses).
 */
export async function wakeAndClaim(db: Queryable, keys: string[], intervalMs: number, c: ClaimLimits): Promise<{ woken: Woken[]; claimed: DueDelivery[] }> {
  if (keys.length === 0) return { woken: [], claimed: [] };
  let st = WAKE_AND_CLAIM.get(intervalMs);
  if (!st) WAKE_AND_CLAIM.set(intervalMs, (st = wakeAndClaimStatement(intervalMs)));
  const rows = await db.run<Record<string, unknown>>(st, { keys: pgArray(keys), ...limitValues(c) });
  return { woken: rows.filter((r) => r.claimed !== true).map(toWoken), claimed: rows.filter((r) => r.claimed === true).map(toDue) };
}

/** wakeAndClaim's statement per wake interval (one in a server; tests use several). */
const WAKE_AND_CLAIM = new Map<number, Statement>();

function wakeAndClaimStatement(intervalMs: number): Statement {
  const now = sql`clock_timestamp()`;
  const ms = (v: SQL) => sql`${v} * interval '1 millisecond'`;
  const claimed = sql`per.id IS NOT NULL`;
  return statement(sql`
    WITH p AS (
      SELECT DISTINCT l.subscription_id AS id FROM ds_subscription_links l
      WHERE l.stream_path = ANY(${ph("keys")}::text[]) AND ${LINK_TAIL} > l.acked_pos),
    cand AS (
      SELECT s.id, ${HOST} AS host, row_number() OVER (PARTITION BY ${HOST} ORDER BY s.id) AS rn
      FROM ds_subscriptions s JOIN p ON p.id = s.id
      WHERE ${IDLE} AND (s.next_wake_at IS NULL OR s.next_wake_at - ${Math.max(0, Math.round(intervalMs))} * interval '1 millisecond' <= ${now})),
    pick AS (SELECT c.id FROM cand c ${HOST_CAPS.join} WHERE ${HOST_CAPS.fits} ORDER BY c.id LIMIT ${ph("limit")}),
    per AS (SELECT pick.id, ${SNAPSHOT_AND_LINKS(sql`pick`)} AS both FROM pick)
    UPDATE ds_subscriptions s SET ${newWake(intervalMs, {
      claim: sql`CASE WHEN ${claimed} THEN ${ph("prefix")} || ':' || s.id || ':' || (s.generation + 1) || ':1' END`,
      deliveringUntil: sql`CASE WHEN ${claimed} THEN least(${now} + ${ms(sql`${ph("timeoutMs")}`)},
        CASE WHEN s.type = 'webhook' THEN ${now} + ${ms(sql`s.lease_ttl_ms`)} END) + ${ms(sql`${ph("marginMs")}`)} END`,
      leaseUntil: sql`CASE WHEN ${claimed} AND s.type = 'webhook' THEN ${now} + ${ms(sql`s.lease_ttl_ms`)} END`,
      snapshot: sql`per.both -> 0`,
    })}
    FROM p LEFT JOIN per ON per.id = p.id
    WHERE s.id = p.id AND ${IDLE}
    RETURNING ${WOKEN}, ${claimed} AS claimed, ${CLAIMED}, per.both -> 1 AS links`);
}

function toDue(r: Record<string, unknown>): DueDelivery {
  return {
    id: String(r.id),
    incarnation: Number(r.incarnation),
    type: r.type as DueDelivery["type"],
    webhookUrl: (r.webhook_url as string | null) ?? null,
    host: (r.host as string | null) ?? null,
    wakeStream: (r.wake_stream as string | null) ?? null,
    generation: Number(r.generation),
    wakeId: String(r.wake_id),
    baseUrl: String(r.base_url),
    attempt: Number(r.attempt),
    claim: String(r.delivery_claim),
    scope: (r.scope as string | null) ?? null,
    links: parseLinks(r.links),
    leaseMs: r.lease_ms === null || r.lease_ms === undefined ? null : Number(r.lease_ms),
  };
}
