// The stream list: prefix search, keyset pages (the API's `next` cursor), and a dialog to
// create a stream.
import { admin, canonicalName, streams } from "./api.js";
import { field, formDialog, h, mount } from "./dom.js";
import { ago, bytes, count, expiry, readable, time } from "./format.js";

const PAGE_SIZE = 50;
// Cursors of the pages before this one, so "Previous" can walk back.
let trail = [];

export async function listView(root, params, { go, report }) {
  const prefix = params.get("prefix") ?? "";
  const after = params.get("after") ?? "";
  if (!after) trail = [];

  const search = h("input", {
    type: "search", placeholder: "Filter by name prefix, e.g. orders/", value: prefix,
    "aria-label": "name prefix", "data-testid": "prefix",
  });
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => go(listHash(search.value, "")), 250);
  });
  const body = h("tbody", {}, h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Loading…")));
  const pager = h("div", { class: "pager" });
  mount(root,
    h("div", { class: "toolbar" },
      search,
      h("span", { class: "spacer" }),
      h("button", { class: "primary", onclick: () => createDialog(go), "data-testid": "new-stream" }, "New stream"),
    ),
    h("table", { class: "streams", "data-testid": "stream-table" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Name"), h("th", {}, "Type"), h("th", { class: "num" }, "Tail"), h("th", { class: "num" }, "Stored"),
        h("th", {}, "Created"), h("th", {}, "Expiry"), h("th", {}, "State"))),
      body),
    pager,
  );

  let page;
  try {
    page = await admin.list({ prefix: asStored(prefix), after, limit: PAGE_SIZE });
  } catch (err) {
    mount(body, h("tr", {}, h("td", { colspan: 7, class: "error" }, err.message)));
    report(err);
    return;
  }
  mount(body, page.streams.length
    ? page.streams.map((s) => row(s))
    : h("tr", {}, h("td", { colspan: 7, class: "muted" }, prefix ? `No stream starts with “${prefix}”.` : "No streams yet.")));
  const pageNo = trail.length + 1;
  mount(pager,
    h("button", {
      class: "secondary", disabled: !after,
      onclick: () => go(listHash(prefix, trail.pop() ?? "")),
    }, "← Previous"),
    h("span", { class: "muted" }, `page ${pageNo} · ${page.streams.length} stream${page.streams.length === 1 ? "" : "s"}`),
    h("button", {
      class: "secondary", disabled: !page.next, "data-testid": "next-page",
      onclick: () => {
        trail.push(after);
        go(listHash(prefix, page.next));
      },
    }, "Next →"),
  );
}

/**
 * Names are stored as the URL path the client sent, so "café" is stored "caf%C3%A9": encode
 * what a browser encodes in a path (spaces, non-ASCII, a few symbols), keep the rest as typed.
 */
function asStored(prefix) {
  return prefix.replace(/[^\x21-\x7e]|["#<>?`{}]/gu, (c) => encodeURIComponent(c));
}

export function listHash(prefix, after) {
  const q = new URLSearchParams();
  if (prefix) q.set("prefix", prefix);
  if (after) q.set("after", after);
  const s = q.toString();
  return `#/${s ? `?${s}` : ""}`;
}

function row(s) {
  const tail = s.kind === "json" ? `${count(s.messageCount)} msg` : bytes(s.tailPosition);
  return h("tr", { "data-name": s.name },
    h("td", {}, h("a", { href: `#/s/${s.name}`, class: "name", title: s.path }, readable(s.name))),
    h("td", {}, h("span", { class: `type ${s.kind}` }, s.contentType)),
    h("td", { class: "num" }, tail),
    h("td", { class: "num" }, bytes(s.storedBytes)),
    h("td", { title: time(s.createdAt) }, ago(s.createdAt)),
    h("td", {}, expiry(s)),
    h("td", {}, badges(s)),
  );
}

export function badges(s) {
  return [
    s.deleted ? h("span", { class: "badge deleted", title: "deleted, kept while forks read it" }, "deleted") : null,
    s.closed ? h("span", { class: "badge closed" }, "closed") : null,
    s.forkedFrom ? h("span", { class: "badge fork", title: `forked from ${s.forkedFrom.name ?? "(retired stream)"}` }, "fork") : null,
    s.forkCount > 0 ? h("span", { class: "badge", title: "forks reading this stream" }, `${s.forkCount} fork${s.forkCount > 1 ? "s" : ""}`) : null,
    !s.deleted && !s.closed ? h("span", { class: "badge open" }, "open") : null,
  ];
}

function createDialog(go) {
  const name = h("input", { name: "name", required: true, placeholder: "orders/eu", "data-testid": "create-name" });
  const type = h("input", { name: "type", list: "content-types", value: "application/json", "data-testid": "create-type" });
  const ttl = h("input", { name: "ttl", inputmode: "numeric", placeholder: "seconds" });
  const expires = h("input", { name: "expires", placeholder: "2030-01-01T00:00:00Z" });
  const initial = h("textarea", { name: "body", rows: 3, placeholder: "optional first data" });
  formDialog("New stream", [
    field("Name", name, "the path below /v1/stream/"),
    field("Content type", type),
    h("datalist", { id: "content-types" },
      ["application/json", "text/plain", "application/x-ndjson", "application/octet-stream"].map((t) => h("option", { value: t }))),
    h("div", { class: "row" }, field("TTL", ttl), field("or expires at", expires)),
    field("Initial data", initial),
  ], "Create", async () => {
    const n = canonicalName(name.value);
    await streams.create(n, {
      contentType: type.value.trim(), ttl: ttl.value.trim(), expiresAt: expires.value.trim(), body: initial.value,
    });
    go(`#/s/${n}`);
  });
}
