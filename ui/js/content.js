// A stream's stored data, a page at a time from any offset: JSON messages pretty-printed
// one per row, text as text, binary as hex + ASCII; every row with its offset.
import { admin } from "./api.js";
import { h, mount } from "./dom.js";
import { count, fromBase64, hexLines, offsetOf, prettyJson } from "./format.js";

const SIZES = { json: [20, 100, 500], bytes: [1024, 4096, 16384] };

/** One table row for a message (JSON), an append's text, or a run of bytes. */
export function itemRow(item) {
  let content;
  if (item.kind === "json") content = h("pre", { class: "json" }, prettyJson(item.text));
  else if (item.kind === "text") content = h("pre", { class: "text" }, item.text);
  else content = h("pre", { class: "hex", "data-testid": "hex" }, hexLines(item.bytes, item.position).join("\n"));
  return h("tr", { "data-position": item.position },
    h("td", { class: "offset", title: offsetOf(item.position) }, count(item.position)),
    h("td", {}, content));
}

function toItems(page) {
  const decoder = new TextDecoder();
  return page.items.map((i) => {
    if (page.kind === "json") return { position: i.position, kind: "json", text: i.text };
    const data = fromBase64(i.base64);
    return page.kind === "text"
      ? { position: i.position, kind: "text", text: decoder.decode(data, { stream: true }) }
      : { position: i.position, kind: "binary", bytes: data };
  });
}

/** The content panel; `show(at)` moves it. The hash keeps the position so pages can be linked. */
export function contentPanel(stream, params, report) {
  const unit = stream.kind === "json" ? "json" : "bytes";
  let limit = Number(params.get("limit")) || SIZES[unit][1];
  let at = params.has("at") ? Number(params.get("at")) : 0;
  let tail = stream.tailPosition;

  const rows = h("tbody");
  const range = h("span", { class: "range", "data-testid": "range" });
  const goto = h("input", { placeholder: "offset or position", "aria-label": "go to offset", "data-testid": "goto", class: "goto" });
  const size = h("select", { "aria-label": "page size" },
    SIZES[unit].map((n) => h("option", { value: n, selected: n === limit }, unit === "json" ? `${n} per page` : `${n / 1024} KiB per page`)));
  size.addEventListener("change", () => {
    limit = Number(size.value);
    show(at);
  });
  const btn = (label, testid, fn) => h("button", { class: "secondary", "data-testid": testid, onclick: fn }, label);
  const nav = {
    first: btn("« First", "first", () => show(0)),
    prev: btn("‹ Prev", "prev", () => show(Math.max(0, at - limit))),
    next: btn("Next ›", "next", () => show(nextAt)),
    last: btn("Last »", "last", () => show(Math.max(0, tail - limit))),
  };
  const form = h("form", { class: "goto-form", onsubmit: (ev) => {
    ev.preventDefault();
    const v = goto.value.trim();
    if (v) show(/^\d+$/.test(v) ? Number(v) : v);
  } }, goto, h("button", { class: "secondary" }, "Go"));
  let nextAt = 0;

  async function show(target) {
    let page;
    try {
      page = await admin.content(stream.name, typeof target === "number" ? String(target) : target, limit);
    } catch (err) {
      report(err);
      return;
    }
    at = page.position;
    nextAt = page.nextPosition;
    tail = page.tailPosition;
    const items = toItems(page);
    mount(rows, items.length ? items.map(itemRow) : h("tr", {}, h("td", { colspan: 2, class: "muted" }, "No data at this offset.")));
    const what = unit === "json" ? "messages" : "bytes";
    mount(range, tail === 0 ? `no ${what} yet` : `${what} ${count(at)}–${count(Math.max(at, nextAt - 1))} of ${count(tail)}`);
    nav.first.disabled = nav.prev.disabled = at === 0;
    nav.next.disabled = nav.last.disabled = nextAt >= tail;
    const q = new URLSearchParams(location.hash.split("?")[1] ?? "");
    q.set("at", String(at));
    q.set("limit", String(limit));
    history.replaceState(null, "", `${location.hash.split("?")[0]}?${q}`);
  }

  const el = h("section", { class: "card content", "data-testid": "content" },
    h("header", {}, h("h2", {}, "Content"), range, h("span", { class: "spacer" }), form, size),
    h("div", { class: "pager" }, nav.first, nav.prev, nav.next, nav.last),
    h("table", { class: "items" }, h("thead", {}, h("tr", {}, h("th", {}, unit === "json" ? "Message" : "Byte"), h("th", {}, "Data"))), rows),
  );
  show(at);
  return {
    el,
    show,
    /** Reads the current page again (new data, or a closed stream). */
    reload: () => show(at),
    /** Shows the page that ends at the tail (after an append). */
    showEnd: (newTail) => show(Math.max(0, newTail - limit)),
  };
}
