// The admin API's subscription views (read-only): live subscriptions with their wake,
// lease and delivery state, and their links with each acked offset beside the linked
// stream's tail, so a person can see which streams a worker is behind on. Subscriptions
// are changed only through the protocol's control API (/v1/stream/__ds/...).
import { hasControlChars } from "../protocol/paths.ts";
import { BadRequest, SubscriptionError } from "../protocol/errors.ts";
import { formatOffset } from "../protocol/offsets.ts";
import type { SubscriptionLink, SubscriptionSummary } from "../store/index.ts";
import { type AppContext, STREAM_PREFIX } from "../http/context.ts";
import { intParam, json, param } from "./api.ts";

export const ADMIN_SUBSCRIPTIONS = "/v1/admin/subscriptions";

const MAX_ID = 256;
const LIST_LIMIT = { default: 50, max: 500 };
// Links shown with each subscription of a listing: enough to see, bounded for one that
// follows 10,000 streams (linkCount tells how many there are).
const LIST_LINKS = 100;
const LINK_LIMIT = { default: 100, max: 1000 };

/** A subscription id (or a prefix of one) from the query string. */
function idParam(url: URL, name: string): string | null {
  const v = param(url, name);
  if (v === null) return null;
  if (v.length > MAX_ID || hasControlChars(v)) throw new BadRequest(`${name} must be at most ${MAX_ID} printable characters`);
  return v;
}

function linkView(l: SubscriptionLink) {
  return {
    name: l.path.startsWith(STREAM_PREFIX) ? l.path.slice(STREAM_PREFIX.length) : l.path,
    path: l.path,
    linkType: l.explicit ? (l.glob ? "explicit+glob" : "explicit") : "glob",
    ackedOffset: formatOffset(l.ackedPos),
    ackedPosition: l.ackedPos,
    tailOffset: l.tail === null ? null : formatOffset(l.tail),
    tailPosition: l.tail,
    // How far the worker is behind this stream; null while the stream does not exist.
    behind: l.tail === null ? null : Math.max(0, l.tail - l.ackedPos),
  };
}

function view(s: SubscriptionSummary) {
  return {
    id: s.id,
    type: s.type,
    pattern: s.pattern,
    webhookUrl: s.webhookUrl,
    wakeStream: s.wakeStream,
    leaseTtlMs: s.leaseTtlMs,
    description: s.description,
    createdAt: s.createdAt,
    status: s.status,
    generation: s.generation,
    wakeId: s.wakeId,
    holder: s.holder,
    leaseDeadline: s.leaseUntil,
    delivery: {
      attempt: s.attempt,
      nextAttemptAt: s.deliverAt,
      claimedBy: s.deliveryClaim,
      claimedUntil: s.deliveringUntil,
    },
    linkCount: s.linkCount,
    explicitCount: s.explicitCount,
    links: s.links.map(linkView),
  };
}

/** GET /v1/admin/subscriptions?prefix=&after=&limit= : a page in id order, `next` for the following one. */
export async function handleSubscriptionList(ctx: AppContext, url: URL): Promise<Response> {
  const prefix = idParam(url, "prefix") ?? "";
  const after = idParam(url, "after");
  const limit = intParam(url, "limit", LIST_LIMIT);
  const rows = await ctx.store.listSubscriptions({ prefix, after, limit: limit + 1, linkLimit: LIST_LINKS });
  const page = rows.slice(0, limit).map(view);
  return json({ subscriptions: page, next: rows.length > limit ? page[page.length - 1].id : null });
}

/**
 * GET /v1/admin/subscriptions/{id}?after=&limit= : one subscription with a page of its
 * links in path order (`after` is the previous page's last stream name, `linksNext` the next).
 */
export async function handleSubscriptionDescribe(ctx: AppContext, url: URL): Promise<Response> {
  const id = decoded(url.pathname.slice(ADMIN_SUBSCRIPTIONS.length + 1));
  if (id.length === 0 || id.length > MAX_ID || hasControlChars(id)) {
    throw new BadRequest(`subscription id must be 1 to ${MAX_ID} printable characters`);
  }
  const after = param(url, "after");
  const max = ctx.config.MAX_PATH_BYTES;
  if (after !== null && (STREAM_PREFIX.length + after.length > max || after.includes("\u0000"))) {
    throw new BadRequest(`after must be a stream name without NUL characters, at most ${max} bytes with the stream root`);
  }
  const limit = intParam(url, "limit", LINK_LIMIT);
  const s = await ctx.store.describeSubscription(id, { after: after === null || after === "" ? null : STREAM_PREFIX + after, limit: limit + 1 });
  if (!s) throw new SubscriptionError("SUBSCRIPTION_NOT_FOUND", `subscription ${JSON.stringify(id)} not found`);
  const v = view({ ...s, links: s.links.slice(0, limit) });
  return json({ ...v, linksBehind: s.linksBehind, linksNext: s.links.length > limit ? v.links[v.links.length - 1].name : null });
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest("subscription id is not valid URL encoding");
  }
}
