// Subscription lifecycle (PROTOCOL 6): create / re-confirm by configuration hash, read,
// delete (tombstone), explicit links, and the links of streams created or deleted later.
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";
import { CLEAR_WAKE, LINKS_JSON, type LinkState, LIVE_STREAM, parseLinks } from "./sql.ts";
import { sqlState } from "../driver/sql-state.ts";

/** A subscription's configuration as every view of its row shares it. */
export interface SubscriptionConfigFields {
  id: string;
  type: "webhook" | "pull-wake";
  pattern: string | null;
  webhookUrl: string | null;
  wakeStream: string | null;
  leaseTtlMs: number;
  description: string | null;
}

export interface NewSubscription extends SubscriptionConfigFields {
  patternRegex: string | null;
  /** Explicit stream keys. */
  streams: string[];
  configHash: string;
  baseUrl: string;
  /** Who may it cover (subscriptions/scope.ts), as JSON text; null without auth. */
  scope: string | null;
}

export interface SubscriptionRecord extends SubscriptionConfigFields {
  incarnation: number;
  configHash: string;
  baseUrl: string;
  createdAt: Date;
  status: "active" | "failed";
  generation: number;
  wakeId: string | null;
  holder: string | null;
  /** JSON text of subscriptions/scope.ts's SubscriptionScope; null when created without auth. */
  scope: string | null;
  links: LinkState[];
}

const COLUMNS = sql`s.id, s.incarnation, s.type, s.pattern, s.webhook_url, s.wake_stream, s.lease_ttl_ms, s.description,
  s.config_hash, s.base_url, (extract(epoch FROM s.created_at) * 1000)::float8 AS created_ms, s.status, s.generation,
  s.wake_id, s.holder, s.scope::text AS scope, ${LINKS_JSON} AS links`;

function toRecord(r: Record<string, unknown>): SubscriptionRecord {
  return {
    id: String(r.id),
    incarnation: Number(r.incarnation),
    type: r.type as SubscriptionRecord["type"],
    pattern: (r.pattern as string | null) ?? null,
    webhookUrl: (r.webhook_url as string | null) ?? null,
    wakeStream: (r.wake_stream as string | null) ?? null,
    leaseTtlMs: Number(r.lease_ttl_ms),
    description: (r.description as string | null) ?? null,
    configHash: String(r.config_hash),
    baseUrl: String(r.base_url),
    createdAt: new Date(Number(r.created_ms)),
    status: r.status === "failed" ? "failed" : "active",
    generation: Number(r.generation),
    wakeId: (r.wake_id as string | null) ?? null,
    holder: (r.holder as string | null) ?? null,
    scope: (r.scope as string | null) ?? null,
    links: parseLinks(r.links),
  };
}

export async function findSubscription(q: Queryable, id: string): Promise<SubscriptionRecord | undefined> {
  const rows = await q.rows(sql`SELECT ${COLUMNS} FROM ds_subscriptions s WHERE s.id = ${id} AND s.deleted_at IS NULL`);
  return rows.length ? toRecord(rows[0]) : undefined;
}

export type CreateResult = { kind: "created" | "confirmed"; subscription: SubscriptionRecord } | { kind: "conflict" };

/**
 * Creates the subscription, or re-confirms it when the stored configuration hash is the
 * same. A tombstoned id is created again with a new incarnation.
 */
export async function createSubscription(db: Db, channel: string, n: NewSubscription): Promise<CreateResult> {
  const run = () =>
    db.tx(async (q): Promise<CreateResult> => {
      const existing = await q.rows<{ config_hash: string; deleted: boolean }>(sql`
        SELECT config_hash, deleted_at IS NOT NULL AS deleted FROM ds_subscriptions WHERE id = ${n.id} FOR UPDATE`);
      if (existing.length && !existing[0].deleted) {
        if (existing[0].config_hash !== n.configHash) return { kind: "conflict" };
        // Re-confirmed by its creator: their read globs as they are now (a JWT's claims may have changed).
        if (n.scope !== null) {
          await q.rows(sql`UPDATE ds_subscriptions SET scope = ${n.scope}::jsonb WHERE id = ${n.id}
            AND scope->'principal' = ${n.scope}::jsonb->'principal' AND scope->'source' = ${n.scope}::jsonb->'source'`);
        }
        return { kind: "confirmed", subscription: (await findSubscription(q, n.id))! };
      }
      await q.rows(sql`DELETE FROM ds_subscription_links WHERE subscription_id = ${n.id}`);
      await q.rows(sql`
        INSERT INTO ds_subscriptions AS s (id, incarnation, type, pattern, pattern_regex, webhook_url, wake_stream, lease_ttl_ms,
                                           description, config_hash, base_url, scope)
        VALUES (${n.id}, nextval('ds_subscription_incarnations'), ${n.type}, ${n.pattern}, ${n.patternRegex}, ${n.webhookUrl},
                ${n.wakeStream}, ${n.leaseTtlMs}, ${n.description}, ${n.configHash}, ${n.baseUrl}, ${n.scope}::jsonb)
        ON CONFLICT (id) DO UPDATE SET incarnation = EXCLUDED.incarnation, type = EXCLUDED.type, pattern = EXCLUDED.pattern,
          pattern_regex = EXCLUDED.pattern_regex, webhook_url = EXCLUDED.webhook_url, wake_stream = EXCLUDED.wake_stream,
          lease_ttl_ms = EXCLUDED.lease_ttl_ms, description = EXCLUDED.description, config_hash = EXCLUDED.config_hash,
          base_url = EXCLUDED.base_url, scope = EXCLUDED.scope, created_at = clock_timestamp(), deleted_at = NULL, ${CLEAR_WAKE}`);
      await linkExplicit(q, n.id, n.streams);
      if (n.patternRegex !== null) {
        // Backfill: existing streams are linked at their current tail, so creating a
        // subscription does not replay history (PROTOCOL 6.2).
        await q.rows(sql`
          INSERT INTO ds_subscription_links (subscription_id, stream_path, glob, acked_pos)
          SELECT ${n.id}, st.path, true, st.tail FROM ds_streams st
          WHERE st.path IS NOT NULL AND st.path ~ ${n.patternRegex} AND ${LIVE_STREAM}
          ON CONFLICT (subscription_id, stream_path) DO UPDATE SET glob = true`);
      }
      await notifyLinks(q, channel);
      return { kind: "created", subscription: (await findSubscription(q, n.id))! };
    });
  try {
    return await run();
  } catch (err) {
    // Two instances created the same new id at once: the loser re-checks against the winner.
    if (sqlState(err) === "23505") return run();
    throw err;
  }
}


/** Explicit links at each stream's current tail (0 for streams that do not exist yet). */
async function linkExplicit(q: Queryable, id: string, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await q.rows(sql`
    INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit, acked_pos)
    SELECT ${id}, k.key, true, coalesce((SELECT st.tail FROM ds_streams st WHERE st.path = k.key AND ${LIVE_STREAM}), 0)
    FROM unnest(${pgArray(keys)}::text[]) AS k(key)
    ON CONFLICT (subscription_id, stream_path) DO UPDATE SET explicit = true`);
}

/** Tombstones the subscription; false when there is none. */
export async function deleteSubscription(db: Db, channel: string, id: string): Promise<boolean> {
  return db.tx(async (q) => {
    const rows = await q.rows(sql`
      UPDATE ds_subscriptions s SET deleted_at = clock_timestamp(), ${CLEAR_WAKE}
      WHERE s.id = ${id} AND s.deleted_at IS NULL RETURNING s.id`);
    if (rows.length === 0) return false;
    await q.rows(sql`DELETE FROM ds_subscription_links WHERE subscription_id = ${id}`);
    await notifyLinks(q, channel);
    return true;
  });
}

/** Adds explicit links; false when the subscription does not exist. */
export async function addExplicitLinks(db: Db, channel: string, id: string, keys: string[]): Promise<boolean> {
  return db.tx(async (q) => {
    const rows = await q.rows(sql`SELECT 1 FROM ds_subscriptions WHERE id = ${id} AND deleted_at IS NULL FOR SHARE`);
    if (rows.length === 0) return false;
    await linkExplicit(q, id, keys);
    await notifyLinks(q, channel);
    return true;
  });
}

/**
 * Drops links to streams outside the subscription's scope (its creator's grants narrowed):
 * gone, they never count as pending work, start a wake, or get named. A stream the glob
 * matches that is created again is linked again, and dropped again at its first wake.
 */
export async function dropLinks(q: Queryable, id: string, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await q.rows(sql`DELETE FROM ds_subscription_links WHERE subscription_id = ${id} AND stream_path = ANY(${pgArray(keys)}::text[])`);
}

/** Removes an explicit link (a glob link to the same stream stays); false when no subscription. */
export async function removeExplicitLink(db: Db, channel: string, id: string, key: string): Promise<boolean> {
  return db.tx(async (q) => {
    const rows = await q.rows(sql`SELECT 1 FROM ds_subscriptions WHERE id = ${id} AND deleted_at IS NULL FOR SHARE`);
    if (rows.length === 0) return false;
    await q.rows(sql`UPDATE ds_subscription_links SET explicit = false WHERE subscription_id = ${id} AND stream_path = ${key}`);
    await q.rows(sql`DELETE FROM ds_subscription_links WHERE subscription_id = ${id} AND stream_path = ${key} AND NOT glob`);
    await notifyLinks(q, channel);
    return true;
  });
}

/**
 * Links a newly created stream to every glob subscription it matches, with the cursor
 * before its first data (`fromPos`), so that data is pending (PROTOCOL 6.2).
 */
export async function linkCreatedStream(db: Db, key: string, fromPos: number): Promise<number> {
  const rows = await db.rows(sql`
    INSERT INTO ds_subscription_links (subscription_id, stream_path, glob, acked_pos)
    SELECT s.id, ${key}, true, ${fromPos} FROM ds_subscriptions s
    WHERE s.deleted_at IS NULL AND s.pattern_regex IS NOT NULL AND ${key} ~ s.pattern_regex
    ON CONFLICT (subscription_id, stream_path) DO UPDATE SET glob = true
    RETURNING subscription_id`);
  return rows.length;
}

/** A deleted (or expired) stream leaves every subscription (PROTOCOL 6). */
export async function unlinkStream(q: Queryable, key: string | null): Promise<void> {
  if (key === null) return;
  await q.rows(sql`DELETE FROM ds_subscription_links WHERE stream_path = ${key}`);
}

/** What the per-instance trigger check needs: explicitly linked keys and the globs. */
/** What the wake trigger follows: explicitly linked stream keys and glob patterns, each with its subscription. */
export async function loadTriggerSet(db: Db): Promise<{ keys: [string, string][]; patterns: [string, string][] }> {
  const keys = await db.rows<{ k: string; id: string }>(sql`SELECT stream_path AS k, subscription_id AS id FROM ds_subscription_links WHERE explicit`);
  const patterns = await db.rows<{ p: string; id: string }>(sql`
    SELECT pattern AS p, id FROM ds_subscriptions WHERE deleted_at IS NULL AND pattern IS NOT NULL`);
  return { keys: keys.map((r) => [r.k, r.id]), patterns: patterns.map((r) => [r.p, r.id]) };
}

async function notifyLinks(q: Queryable, channel: string): Promise<void> {
  await q.rows(sql`SELECT pg_notify(${channel}, 'links')`);
}
