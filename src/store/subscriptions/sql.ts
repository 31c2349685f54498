// SQL fragments shared by the subscription statements: what "live stream", "pending work"
// and "a new wake" mean, written once.
import type { LinkState } from "../../protocol/wake-fence.ts";
import { type SQL, sql } from "../driver/db.ts";
import { EXPIRED_SQL } from "../streams/records.ts";

/** Options for statements with constant text: prepared once per connection, not parsed and planned per call. */
export const PREPARED = { prepare: true } as const;

/** The stream `st` exists for clients: not deleted, not expired. */
export const LIVE_STREAM = sql`st.deleted_at IS NULL AND NOT ${EXPIRED_SQL("st")}`;

/**
 * The tail of link `l`'s stream, NULL when it does not exist for clients. A scalar subquery,
 * so each link is one look-up in the unique path index whatever the planner believes: as a
 * join, a table without statistics (autovacuum off, or not yet analyzed) was estimated at
 * two live streams, and a nested loop compared every link with every stream (50 ms for 100
 * links over 1,000 streams, on every wake).
 */
export const LINK_TAIL = sql`(SELECT st.tail FROM ds_streams st WHERE st.path = l.stream_path AND ${LIVE_STREAM})`;
/** The linked stream's earliest retained position (retention, notes/retention.md). */
export const LINK_EARLIEST = sql`(SELECT st.earliest FROM ds_streams st WHERE st.path = l.stream_path AND ${LIVE_STREAM})`;

/** Subscription `s` has a linked stream whose tail is past its cursor (PROTOCOL 7). */
export const HAS_PENDING = sql`EXISTS (
  SELECT 1 FROM ds_subscription_links l WHERE l.subscription_id = s.id AND ${LINK_TAIL} > l.acked_pos)`;

export const NEW_WAKE_ID = sql`'w_' || replace(gen_random_uuid()::text, '-', '')`;

/**
 * Wake pacing (migrations/0005): a new wake of `s` is due now, or once the subscription has
 * earned it back, at most one interval ahead of its schedule (a burst of two). The
 * schedule (`next_wake_at`) then moves one interval past the later of itself and this due
 * time. A subscription whose streams are written all the time is so woken about once per
 * interval, each wake covering everything since; one written now and then is woken at once.
 */
const ms = (intervalMs: number) => sql`${Math.max(0, Math.round(intervalMs))} * interval '1 millisecond'`;
const wakeDue = (intervalMs: number) => sql`greatest(clock_timestamp(), s.next_wake_at - ${ms(intervalMs)})`;
const nextSchedule = (intervalMs: number) => sql`greatest(s.next_wake_at, ${wakeDue(intervalMs)}) + ${ms(intervalMs)}`;

/** The SET list of a wake that starts: `due` per wakeDue, and the schedule moved on. */
export const pacedWake = (intervalMs: number) => ({ due: wakeDue(intervalMs), schedule: nextSchedule(intervalMs) });

/** What a wake claimed in the statement that starts it sets (store/subscriptions/claims.ts wakeAndClaim). */
export interface ClaimAtStart {
  claim: SQL;
  deliveringUntil: SQL;
  leaseUntil: SQL;
  snapshot: SQL;
}

/**
 * Starts a new wake: the next generation, a fresh wake id, and its delivery (the webhook
 * POST, or the wake event of a pull-wake subscription) due per wakeDue; unclaimed unless
 * `claimed` says how it is claimed at once. Used only in UPDATEs that also require
 * `wake_id IS NULL AND holder IS NULL`, so however many instances try, one wins.
 */
export const newWake = (intervalMs: number, claimed?: ClaimAtStart) => {
  const paced = pacedWake(intervalMs);
  const c = claimed ?? { claim: sql`NULL`, deliveringUntil: sql`NULL`, leaseUntil: sql`NULL`, snapshot: sql`NULL` };
  return sql`generation = s.generation + 1, wake_id = ${NEW_WAKE_ID}, wake_snapshot = ${c.snapshot}, holder = NULL, lease_until = ${c.leaseUntil},
    deliver_at = ${paced.due}, next_wake_at = ${paced.schedule}, attempt = 0, status = 'active', delivery_claim = ${c.claim}, delivering_until = ${c.deliveringUntil}`;
};

/** In RETURNING of a statement that started wakes: what toWoken reads. */
export const WOKEN = sql`s.id, s.type, greatest(0, ceil(extract(epoch FROM s.deliver_at - clock_timestamp()) * 1000))::int AS due_in_ms`;

/** A wake just started: which subscription, of which type, and in how many milliseconds it is due. */
export interface Woken {
  id: string;
  type: "webhook" | "pull-wake";
  dueInMs: number;
}

export const toWoken = (r: Record<string, unknown>): Woken => ({
  id: String(r.id),
  type: r.type as Woken["type"],
  dueInMs: Number(r.due_in_ms),
});

/** No wake in flight any more. */
export const CLEAR_WAKE = sql`wake_id = NULL, wake_snapshot = NULL, holder = NULL, lease_until = NULL,
  deliver_at = NULL, attempt = 0, status = 'active', delivery_claim = NULL, delivering_until = NULL`;

export const IDLE = sql`s.deleted_at IS NULL AND s.wake_id IS NULL AND s.holder IS NULL`;

/** Current tails of subscription `s`'s links as a JSON object stream key -> tail position. */
export const SNAPSHOT = sql`(SELECT coalesce(jsonb_object_agg(l.stream_path, coalesce(${LINK_TAIL}, 0)), '{}'::jsonb)
  FROM ds_subscription_links l WHERE l.subscription_id = s.id)`;

/** Links of `s` with their tails, as a JSON array of [key, explicit, acked, tail, earliest]. */
export const LINKS_JSON = sql`(SELECT coalesce(json_agg(json_build_array(l.stream_path, l.explicit, l.acked_pos, coalesce(${LINK_TAIL}, 0),
      coalesce(${LINK_EARLIEST}, 0))
    ORDER BY l.stream_path), '[]'::json)
  FROM ds_subscription_links l WHERE l.subscription_id = s.id)`;

const asJson = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);

export function parseLinks(v: unknown): LinkState[] {
  return ((asJson(v) ?? []) as [string, boolean, unknown, unknown, unknown][]).map(([key, explicit, acked, tail, earliest]) => ({
    key,
    explicit: Boolean(explicit),
    ackedPos: Number(acked),
    tail: Number(tail),
    earliest: Number(earliest ?? 0),
  }));
}

export type { LinkState };

export const subscriptionsChannel = (schema: string) => `ds_${schema}_subs`;
