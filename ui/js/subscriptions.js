// Subscriptions, read-only: a list (id prefix search, keyset pages) and one subscription
// with its wake, lease and delivery state and its links, each acked offset beside the
// linked stream's tail so streams a worker is behind on stand out. Subscriptions are
// created and changed by their workers through the protocol, not from this page.
import { admin } from "./api.js";
import { h, mount } from "./dom.js";
import { ago, count, time } from "./format.js";

const PAGE_SIZE = 50;
const LINK_PAGE = 100;
// Cursors of earlier pages, so "Previous" can walk back (list and links separately).
let trail = [];
let linkTrail = [];

export function subsHash(prefix, after) {
  const q = new URLSearchParams();
  if (prefix) q.set("prefix", prefix);
  if (after) q.set("after", after);
  const s = q.toString();
  return `#/subs${s ? `?${s}` : ""}`;
}

const subHash = (id, after) => `#/subs/${encodeURIComponent(id)}${after ? `?after=${encodeURIComponent(after)}` : ""}`;

export async function subscriptionListView(root, params, { go, report }) {
  const prefix = params.get("prefix") ?? "";
  const after = params.get("after") ?? "";
  if (!after) trail = [];
  const search = h("input", {
    type: "search", placeholder: "Filter by id prefix", value: prefix, "aria-label": "id prefix", "data-testid": "sub-prefix",
  });
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => go(subsHash(search.value, "")), 250);
  });
  const COLS = 8;
  const body = h("tbody", {}, h("tr", {}, h("td", { colspan: COLS, class: "muted" }, "Loading…")));
  const pager = h("div", { class: "pager" });
  mount(root,
    h("div", { class: "toolbar" }, search, h("span", { class: "spacer" }),
      h("span", { class: "muted hint" }, "Read-only: workers manage subscriptions through /v1/stream/__ds/subscriptions")),
    h("table", { class: "streams subs", "data-testid": "sub-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Id"), h("th", {}, "Type"), h("th", {}, "Follows"), h("th", {}, "Target"), h("th", {}, "State"),
        h("th", {}, "Wake"), h("th", {}, "Holder · lease"), h("th", { class: "num" }, "Links"))),
      body),
    pager,
  );
  let page;
  try {
    page = await admin.subscriptions({ prefix, after, limit: PAGE_SIZE });
  } catch (err) {
    mount(body, h("tr", {}, h("td", { colspan: COLS, class: "error" }, err.message)));
    report(err);
    return;
  }
  mount(body, page.subscriptions.length
    ? page.subscriptions.map(subRow)
    : h("tr", {}, h("td", { colspan: COLS, class: "muted" }, prefix ? `No subscription id starts with “${prefix}”.` : "No subscriptions yet.")));
  const n = page.subscriptions.length;
  mount(pager,
    h("button", { class: "secondary", disabled: !after, onclick: () => go(subsHash(prefix, trail.pop() ?? "")) }, "← Previous"),
    h("span", { class: "muted" }, `page ${trail.length + 1} · ${n} subscription${n === 1 ? "" : "s"}`),
    h("button", {
      class: "secondary", disabled: !page.next, "data-testid": "sub-next-page",
      onclick: () => {
        trail.push(after);
        go(subsHash(prefix, page.next));
      },
    }, "Next →"),
  );
}

function follows(s) {
  const explicit = s.explicitCount ? `${count(s.explicitCount)} stream${s.explicitCount === 1 ? "" : "s"}` : null;
  return [
    s.pattern ? h("span", { class: "chip", title: "glob pattern" }, s.pattern) : null,
    explicit ? h("span", { class: "muted" }, s.pattern ? ` + ${explicit}` : explicit) : null,
  ];
}

function target(s) {
  if (s.type === "webhook") return h("code", { class: "url", title: "webhook URL" }, s.webhookUrl);
  return s.wakeStream ? h("a", { href: `#/s/${s.wakeStream}`, class: "mono", title: "wake stream" }, s.wakeStream) : "";
}

export function subBadges(s) {
  return [
    h("span", { class: `badge ${s.status === "active" ? "open" : "deleted"}` }, s.status),
    s.holder ? h("span", { class: "badge fork", title: `claimed by ${s.holder}` }, "claimed") : null,
    s.wakeId && !s.holder ? h("span", { class: "badge closed", title: "a wake is waiting to be delivered or claimed" }, "wake pending") : null,
    s.delivery.attempt > 0 ? h("span", { class: "badge deleted", title: "failed delivery attempts of this wake" }, `retrying (${s.delivery.attempt})`) : null,
  ];
}

function lease(s) {
  if (!s.holder) return h("span", { class: "muted" }, "—");
  return [h("span", { class: "mono" }, s.holder), h("br"), h("small", { class: "muted", title: time(s.leaseDeadline) }, `until ${time(s.leaseDeadline)}`)];
}

function behindShown(s) {
  return s.links.filter((l) => l.behind > 0).length;
}

function subRow(s) {
  const behind = behindShown(s);
  return h("tr", { "data-id": s.id },
    h("td", {}, h("a", { href: subHash(s.id), class: "name" }, s.id), s.description ? [h("br"), h("small", { class: "muted" }, s.description)] : null),
    h("td", {}, h("span", { class: "type" }, s.type)),
    h("td", {}, follows(s)),
    h("td", { class: "target" }, target(s)),
    h("td", {}, subBadges(s)),
    h("td", {}, s.generation ? [h("span", { class: "mono" }, `gen ${count(s.generation)}`), s.wakeId ? [h("br"), h("small", { class: "muted mono" }, s.wakeId)] : null] : h("span", { class: "muted" }, "none yet")),
    h("td", {}, lease(s)),
    h("td", { class: "num" }, count(s.linkCount),
      behind ? [h("br"), h("span", { class: "behind-count", title: s.linkCount > s.links.length ? `among the first ${s.links.length}` : null }, `${behind}${s.linkCount > s.links.length ? "+" : ""} behind`)] : null),
  );
}

export async function subscriptionView(root, id, params, { go }) {
  const after = params.get("after") ?? "";
  if (!after) linkTrail = [];
  mount(root, h("p", { class: "muted" }, `Loading ${id}…`));
  let s;
  try {
    s = await admin.subscription(id, { after, limit: LINK_PAGE });
  } catch (err) {
    mount(root, h("p", { class: "error", "data-testid": "load-error" }, err.message), h("a", { href: "#/subs" }, "← All subscriptions"));
    return;
  }
  const d = s.delivery;
  const rows = [
    ["Type", s.type],
    s.pattern ? ["Pattern", h("code", {}, s.pattern)] : null,
    ["Links", `${count(s.linkCount)} (${count(s.explicitCount)} explicit) · ${count(s.linksBehind)} behind`],
    s.type === "webhook" ? ["Webhook URL", h("code", {}, s.webhookUrl)] : ["Wake stream", h("a", { href: `#/s/${s.wakeStream}` }, s.wakeStream)],
    ["Lease TTL", `${count(s.leaseTtlMs)} ms`],
    ["Created", h("span", { title: time(s.createdAt) }, `${time(s.createdAt)} (${ago(s.createdAt)})`)],
    s.description ? ["Description", s.description] : null,
  ].filter(Boolean);
  const wake = [
    ["Status", s.status],
    ["Generation", count(s.generation)],
    ["Wake id", s.wakeId ? h("code", {}, s.wakeId) : h("span", { class: "muted" }, "none in flight")],
    ["Holder", s.holder ? h("code", {}, s.holder) : h("span", { class: "muted" }, "none")],
    ["Lease deadline", s.leaseDeadline ? `${time(s.leaseDeadline)} (${until(s.leaseDeadline)})` : h("span", { class: "muted" }, "—")],
    ["Delivery attempt", count(d.attempt)],
    ["Next attempt", d.nextAttemptAt ? `${time(d.nextAttemptAt)} (${until(d.nextAttemptAt)})` : h("span", { class: "muted" }, "—")],
    d.claimedBy ? ["Delivering", `${d.claimedBy} until ${time(d.claimedUntil)}`] : null,
  ].filter(Boolean);
  const dl = (pairs) => h("dl", {}, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

  mount(root,
    h("nav", { class: "crumbs" }, h("a", { href: "#/subs" }, "Subscriptions"), " / ", h("span", {}, id)),
    h("div", { class: "title" }, h("h1", { "data-testid": "sub-id" }, id), subBadges(s), h("span", { class: "spacer" }),
      h("button", { class: "secondary", "data-testid": "sub-refresh", onclick: () => go(location.hash) }, "Refresh")),
    h("div", { class: "grid" },
      h("section", { class: "card", "data-testid": "sub-meta" }, h("header", {}, h("h2", {}, "Subscription")), dl(rows)),
      h("section", { class: "card", "data-testid": "sub-wake" }, h("header", {}, h("h2", {}, "Wake · lease · delivery")), dl(wake)),
    ),
    h("section", { class: "card" },
      h("header", {}, h("h2", {}, "Links"), h("span", { class: "spacer" }),
        h("span", { class: "range", "data-testid": "link-range" }, linkRange(s, after))),
      h("table", { class: "compact links", "data-testid": "links" },
        h("thead", {}, h("tr", {},
          h("th", {}, "Stream"), h("th", {}, "Link"), h("th", { class: "num" }, "Acked"), h("th", { class: "num" }, "Tail"), h("th", { class: "num" }, "Behind"))),
        h("tbody", {}, s.links.length ? s.links.map(linkRow) : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No links."))),
      ),
      h("div", { class: "pager" },
        h("button", { class: "secondary", disabled: !after, onclick: () => go(subHash(id, linkTrail.pop() ?? "")) }, "← Previous"),
        h("button", {
          class: "secondary", disabled: !s.linksNext, "data-testid": "links-next",
          onclick: () => {
            linkTrail.push(after);
            go(subHash(id, s.linksNext));
          },
        }, "Next →"),
      ),
    ),
  );
}

/** "in 42 s" or "3 s ago": deadlines are the database's clock, this is the browser's. */
function until(iso) {
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  return s >= 0 ? `in ${count(s)} s` : ago(iso);
}

function linkRange(s, after) {
  if (!s.links.length) return `no links shown of ${count(s.linkCount)}`;
  // Opened on a later page directly (no trail): say where the page starts instead.
  if (after && linkTrail.length === 0) return `${count(s.links.length)} links after ${after} (of ${count(s.linkCount)})`;
  const first = linkTrail.length * LINK_PAGE;
  return `links ${count(first + 1)}–${count(first + s.links.length)} of ${count(s.linkCount)}`;
}

function linkRow(l) {
  const missing = l.tailOffset === null;
  return h("tr", { "data-stream": l.name, class: missing ? "missing" : l.behind > 0 ? "behind" : null },
    h("td", {}, missing
      ? h("span", { class: "mono", title: "this stream does not exist (yet)" }, l.name)
      : h("a", { href: `#/s/${l.name}`, class: "mono" }, l.name)),
    h("td", {}, h("span", { class: "muted" }, l.linkType)),
    h("td", { class: "num", title: l.ackedOffset }, count(l.ackedPosition)),
    h("td", { class: "num", title: l.tailOffset ?? "" }, missing ? h("span", { class: "muted" }, "no stream") : count(l.tailPosition)),
    h("td", { class: "num", "data-testid": "behind" }, missing ? "—" : l.behind > 0 ? h("b", {}, count(l.behind)) : h("span", { class: "muted" }, "0")),
  );
}
