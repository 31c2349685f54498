// SQL fragments shared by the subscription statements: what "live stream", "pending work"
// and "a new wake" mean, written once.
import { sql } from "./db.ts";
import { EXPIRED_SQL } from "./records.ts";

/** The stream `st` exists for clients: not deleted, not expired. */
export const LIVE_STREAM = sql`st.deleted_at IS NULL AND NOT ${EXPIRED_SQL("st")}`;

/** Subscription `s` has a linked stream whose tail is past its cursor (PROTOCOL 7). */
export const HAS_PENDING = sql`EXISTS (
  SELECT 1 FROM ds_subscription_links l JOIN ds_streams st ON st.path = l.stream_path
  WHERE l.subscription_id = s.id AND st.tail > l.acked_pos AND ${LIVE_STREAM})`;

/**
 * Starts a new wake: the next generation, a fresh wake id, and its delivery due now (the
 * webhook POST, or the wake event of a pull-wake subscription). Used only in UPDATEs that
 * also require `wake_id IS NULL AND holder IS NULL`, so however many instances try, one wins.
 */
export const NEW_WAKE_ID = sql`'w_' || replace(gen_random_uuid()::text, '-', '')`;

export const NEW_WAKE = sql`generation = s.generation + 1, wake_id = ${NEW_WAKE_ID},
  wake_snapshot = NULL, holder = NULL, lease_until = NULL,
  deliver_at = clock_timestamp(), attempt = 0, status = 'active', delivery_claim = NULL, delivering_until = NULL`;

/** No wake in flight any more. */
export const CLEAR_WAKE = sql`wake_id = NULL, wake_snapshot = NULL, holder = NULL, lease_until = NULL,
  deliver_at = NULL, attempt = 0, status = 'active', delivery_claim = NULL, delivering_until = NULL`;

export const IDLE = sql`s.deleted_at IS NULL AND s.wake_id IS NULL AND s.holder IS NULL`;

/** Current tails of subscription `s`'s links as a JSON object stream key -> tail position. */
export const SNAPSHOT = sql`(SELECT coalesce(jsonb_object_agg(l.stream_path, coalesce(st.tail, 0)), '{}'::jsonb)
  FROM ds_subscription_links l LEFT JOIN ds_streams st ON st.path = l.stream_path AND ${LIVE_STREAM}
  WHERE l.subscription_id = s.id)`;

/** Links of `s` with their tails, as a JSON array of [key, explicit, acked, tail]. */
export const LINKS_JSON = sql`(SELECT coalesce(json_agg(json_build_array(l.stream_path, l.explicit, l.acked_pos, coalesce(st.tail, 0))
    ORDER BY l.stream_path), '[]'::json)
  FROM ds_subscription_links l LEFT JOIN ds_streams st ON st.path = l.stream_path AND ${LIVE_STREAM}
  WHERE l.subscription_id = s.id)`;

export interface LinkState {
  key: string;
  explicit: boolean;
  ackedPos: number;
  tail: number;
}

const asJson = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);

export function parseLinks(v: unknown): LinkState[] {
  return ((asJson(v) ?? []) as [string, boolean, unknown, unknown][]).map(([key, explicit, acked, tail]) => ({
    key,
    explicit: Boolean(explicit),
    ackedPos: Number(acked),
    tail: Number(tail),
  }));
}

export function parseSnapshot(v: unknown): Map<string, number> {
  const o = (asJson(v) ?? {}) as Record<string, unknown>;
  return new Map(Object.entries(o).map(([k, t]) => [k, Number(t)]));
}

export const subscriptionsChannel = (schema: string) => `ds_${schema}_subs`;
