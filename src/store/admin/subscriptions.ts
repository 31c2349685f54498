// Read-only queries for the admin API's subscription views: live (not tombstoned)
// subscriptions in id order with keyset pagination, each with a bounded page of its links
// (acked position beside the linked stream's current tail). A subscription may follow
// 10,000 streams, so links are always read a page at a time, never all at once.
import { type Queryable, sql } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";
import { LINK_TAIL } from "../subscriptions/sql.ts";
import type { SubscriptionConfigFields } from "../subscriptions/subscriptions.ts";

export interface SubscriptionLink {
  /** The stream key (its full path, e.g. /v1/stream/orders/eu). */
  path: string;
  explicit: boolean;
  glob: boolean;
  ackedPos: number;
  /** Tail of the linked stream; null when it does not exist (yet), or is deleted or expired. */
  tail: number | null;
}

export interface SubscriptionSummary extends SubscriptionConfigFields {
  incarnation: number;
  createdAt: string;
  status: string;
  generation: number;
  wakeId: string | null;
  holder: string | null;
  leaseUntil: string | null;
  attempt: number;
  /** When delivery of the current wake is (next) due. */
  deliverAt: string | null;
  deliveryClaim: string | null;
  deliveringUntil: string | null;
  linkCount: number;
  explicitCount: number;
  /** The first links in path order (at most the limit asked for). */
  links: SubscriptionLink[];
}

export interface SubscriptionListQuery {
  prefix: string;
  after: string | null;
  limit: number;
  /** Links returned per subscription. */
  linkLimit: number;
}

export interface LinkPageQuery {
  after: string | null;
  limit: number;
}

// Counting uses the links' primary key (subscription_id, stream_path): an index-only range,
// no stream rows read, however many links there are.
const COLUMNS = sql`s.id, s.incarnation, s.type, s.pattern, s.webhook_url, s.wake_stream, s.lease_ttl_ms,
  s.description, s.created_at, s.status, s.generation, s.wake_id, s.holder, s.lease_until, s.attempt,
  s.deliver_at, s.delivery_claim, s.delivering_until,
  (SELECT count(*) FROM ds_subscription_links l WHERE l.subscription_id = s.id) AS link_count,
  (SELECT count(*) FROM ds_subscription_links l WHERE l.subscription_id = s.id AND l.explicit) AS explicit_count`;

/**
 * The first `limit` links (after `after`) of each of the subscriptions `ids`, in path order,
 * with each stream's tail: one primary-key range per subscription, then one lookup per link.
 */
function linksSql(ids: string[], after: string | null, limit: number) {
  return sql`SELECT x.id AS subscription_id, l.stream_path, l.explicit, l.glob, l.acked_pos, ${LINK_TAIL} AS tail
    FROM unnest(${pgArray(ids)}::text[]) AS x(id)
    CROSS JOIN LATERAL (SELECT * FROM ds_subscription_links l
          WHERE l.subscription_id = x.id ${after === null ? sql`` : sql`AND l.stream_path > ${after}`}
          ORDER BY l.stream_path LIMIT ${limit}) l
    ORDER BY x.id, l.stream_path`;
}

export async function listSubscriptions(db: Queryable, q: SubscriptionListQuery): Promise<SubscriptionSummary[]> {
  const conditions = [sql`s.deleted_at IS NULL`];
  // left() rather than LIKE, so "_" and "%" in a prefix mean themselves.
  if (q.prefix) conditions.push(sql`left(s.id, ${[...q.prefix].length}) = ${q.prefix}`);
  if (q.after !== null) conditions.push(sql`s.id > ${q.after}`);
  // Ordered like the primary key, so "id > after" and the page order agree.
  const rows = await db.rows(sql`SELECT ${COLUMNS} FROM ds_subscriptions s
    WHERE ${sql.join(conditions, sql` AND `)} ORDER BY s.id LIMIT ${q.limit}`);
  if (rows.length === 0) return [];
  const subs = rows.map(toSummary);
  const links = await db.rows(linksSql(subs.map((s) => s.id), null, q.linkLimit));
  const byId = new Map<string, SubscriptionLink[]>(subs.map((s) => [s.id, []]));
  for (const l of links) byId.get(String(l.subscription_id))?.push(toLink(l));
  return subs.map((s) => ({ ...s, links: byId.get(s.id)! }));
}

/** One live subscription with a page of its links; undefined when there is none. */
export async function describeSubscription(
  db: Queryable,
  id: string,
  page: LinkPageQuery,
): Promise<(SubscriptionSummary & { linksBehind: number }) | undefined> {
  const rows = await db.rows(sql`SELECT ${COLUMNS},
      (SELECT count(*) FROM ds_subscription_links l WHERE l.subscription_id = s.id AND ${LINK_TAIL} > l.acked_pos) AS links_behind
    FROM ds_subscriptions s WHERE s.id = ${id} AND s.deleted_at IS NULL`);
  if (rows.length === 0) return undefined;
  const links = await db.rows(linksSql([id], page.after, page.limit));
  return { ...toSummary(rows[0]), links: links.map(toLink), linksBehind: Number(rows[0].links_behind) };
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return new Date(v as string | Date).toISOString();
}

const text = (v: unknown) => (v === null || v === undefined ? null : String(v));

function toSummary(r: Record<string, unknown>): Omit<SubscriptionSummary, "links"> {
  return {
    id: String(r.id),
    incarnation: Number(r.incarnation),
    type: r.type as SubscriptionSummary["type"],
    pattern: text(r.pattern),
    webhookUrl: text(r.webhook_url),
    wakeStream: text(r.wake_stream),
    leaseTtlMs: Number(r.lease_ttl_ms),
    description: text(r.description),
    createdAt: iso(r.created_at)!,
    status: String(r.status),
    generation: Number(r.generation),
    wakeId: text(r.wake_id),
    holder: text(r.holder),
    leaseUntil: iso(r.lease_until),
    attempt: Number(r.attempt),
    deliverAt: iso(r.deliver_at),
    deliveryClaim: text(r.delivery_claim),
    deliveringUntil: iso(r.delivering_until),
    linkCount: Number(r.link_count),
    explicitCount: Number(r.explicit_count),
  };
}

function toLink(r: Record<string, unknown>): SubscriptionLink {
  return {
    path: String(r.stream_path),
    explicit: Boolean(r.explicit),
    glob: Boolean(r.glob),
    ackedPos: Number(r.acked_pos),
    tail: r.tail === null || r.tail === undefined ? null : Number(r.tail),
  };
}
