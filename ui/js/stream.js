// One stream: its metadata, its content, a live tail, and the actions (append, close,
// fork, delete), each change confirmed before it is sent.
import { admin, canonicalName, streams } from "./api.js";
import { confirmDialog, field, formDialog, h, mount } from "./dom.js";
import { bytes, count, expiry, readable, time } from "./format.js";
import { contentPanel } from "./content.js";
import { badges, listHash } from "./list.js";
import { tailPanel } from "./tail.js";

export async function streamView(root, name, params, { go, report, onLeave }) {
  mount(root, h("p", { class: "muted" }, `Loading ${name}…`));
  let s;
  try {
    s = await admin.describe(name);
  } catch (err) {
    mount(root, h("p", { class: "error", "data-testid": "load-error" }, err.message), h("a", { href: "#/" }, "← All streams"));
    return;
  }
  const meta = h("section", { class: "card meta", "data-testid": "meta" });
  const content = contentPanel(s, params, report);
  const tail = tailPanel(s, report);
  onLeave(() => tail.stop());

  async function refresh() {
    try {
      s = await admin.describe(name);
      mount(meta, metadata(s));
    } catch (err) {
      report(err);
    }
  }
  mount(meta, metadata(s));

  const actions = h("div", { class: "actions" },
    h("button", { class: "secondary", "data-testid": "refresh", onclick: () => Promise.all([refresh(), content.reload()]) }, "Refresh"),
    h("button", { class: "secondary", "data-testid": "fork", disabled: s.deleted, onclick: () => forkDialog(s, go) }, "Fork…"),
    h("button", { class: "secondary", "data-testid": "close", disabled: s.closed || s.deleted, onclick: async () => {
      if (!(await confirmDialog(`Close ${name}?`, "A closed stream accepts no more appends. Readers see the end of the stream.", "Close stream"))) return;
      // Closing changes the title, actions and forms: draw the whole view again.
      if (await run(() => streams.close(name))) go(location.hash);
    } }, "Close"),
    h("button", { class: "danger", "data-testid": "delete", disabled: s.deleted, onclick: async () => {
      if (!(await confirmDialog(`Delete ${name}?`, "Its data is removed (kept only while forks still read it). This cannot be undone.", "Delete stream"))) return;
      if (await run(() => streams.remove(name))) go(listHash("", ""));
    } }, "Delete"),
  );

  async function run(fn) {
    try {
      await fn();
      return true;
    } catch (err) {
      report(err);
      return false;
    }
  }

  mount(root,
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Streams"), " / ", h("span", {}, readable(name))),
    h("div", { class: "title" }, h("h1", { "data-testid": "stream-name", title: `/v1/stream/${name}` }, readable(name)), badges(s), h("span", { class: "spacer" }), actions),
    h("div", { class: "grid" },
      meta,
      s.closed || s.deleted ? null : appendForm(s, async (tailPosition) => {
        await refresh();
        await content.showEnd(tailPosition);
      }, report),
    ),
    content.el,
    tail.el,
  );
}

/** The policy the retention pass applies (the stricter of the stream's headers and the operator's rules). */
function retention(r) {
  const e = r.effective;
  const parts = [
    e.maxAgeSeconds !== null ? `max age ${count(e.maxAgeSeconds)} s` : null,
    e.maxBytes !== null ? `max ${bytes(e.maxBytes)}` : null,
    e.compaction ? `compacted (${e.compaction})` : null,
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : "keeps everything";
}

function metadata(s) {
  const rows = [
    ["Content type", s.contentType],
    ["Tail offset", h("code", { "data-testid": "tail-offset" }, s.tailOffset)],
    s.kind === "json" ? ["Messages", count(s.messageCount)] : ["Length", bytes(s.tailPosition)],
    ["Stored bytes", bytes(s.storedBytes)],
    ["Created", time(s.createdAt)],
    ["Last access", time(s.lastAccess)],
    ["Expiry", expiry(s)],
    ["Retention", h("span", { "data-testid": "retention" }, retention(s.retention))],
    s.retention.earliestPosition > 0 || s.retention.lastPassAt
      ? ["Earliest offset", [h("code", { "data-testid": "earliest-offset" }, s.retention.earliestOffset),
        s.retention.lastPassAt ? ` (last pass ${time(s.retention.lastPassAt)})` : ""]]
      : null,
    s.forkedFrom
      ? ["Forked from", [s.forkedFrom.name ? h("a", { href: `#/s/${s.forkedFrom.name}` }, s.forkedFrom.name) : "(retired stream)", " at ", h("code", {}, s.forkedFrom.offset)]]
      : null,
    s.forks.length ? ["Forks", s.forks.map((f) => h("a", { href: `#/s/${f.name}`, class: "chip" }, f.name))] : null,
    s.deletedAt ? ["Deleted", `${time(s.deletedAt)} (kept for ${s.forkCount} fork${s.forkCount === 1 ? "" : "s"})`] : null,
    ["Live readers here", `${s.liveReaders.sse} SSE, ${s.liveReaders.longPoll} long-poll (this instance)`],
  ].filter(Boolean);
  return [
    h("h2", {}, "Metadata"),
    h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    s.producers.length
      ? [h("h3", {}, "Producers"), h("table", { class: "compact" },
        h("thead", {}, h("tr", {}, h("th", {}, "Producer"), h("th", { class: "num" }, "Epoch"), h("th", { class: "num" }, "Last seq"), h("th", {}, "Updated"))),
        h("tbody", {}, s.producers.map((p) => h("tr", {}, h("td", {}, p.producerId), h("td", { class: "num" }, p.epoch), h("td", { class: "num" }, p.lastSeq), h("td", {}, time(p.updatedAt))))))]
      : null,
  ];
}

function appendForm(s, done, report) {
  const hex = s.kind === "binary";
  const input = h("textarea", {
    rows: 4, "data-testid": "append-body", spellcheck: "false",
    placeholder: s.kind === "json" ? '{"hello": "world"}   (an array appends several messages)' : hex ? "hex bytes, e.g. 48 65 6c 6c 6f" : "text to append",
  });
  const note = h("span", { class: "muted", "aria-live": "polite" });
  const form = h("form", { class: "card append", onsubmit: async (ev) => {
    ev.preventDefault();
    let body = input.value;
    if (hex) {
      const digits = body.replace(/\s+/g, "");
      if (!/^([0-9a-fA-F]{2})+$/.test(digits)) {
        note.textContent = "Enter whole bytes in hex.";
        return;
      }
      body = new Uint8Array(digits.match(/../g).map((b) => parseInt(b, 16)));
    }
    try {
      const res = await streams.append(s.name, s.contentType, body);
      const next = res.headers.get("Stream-Next-Offset");
      note.textContent = `Appended; next offset ${next}`;
      input.value = "";
      await done(Number(next.split("_")[1]));
    } catch (err) {
      note.textContent = "";
      report(err);
    }
  } },
    h("h2", {}, "Append"),
    field(`Body (${s.contentType})`, input),
    h("div", { class: "actions" }, note, h("span", { class: "spacer" }), h("button", { class: "primary", "data-testid": "append-submit" }, "Append")),
  );
  return form;
}

function forkDialog(s, go) {
  const name = h("input", { required: true, value: `${s.name}-fork`, "data-testid": "fork-name" });
  const offset = h("input", { value: s.tailOffset, "data-testid": "fork-offset" });
  formDialog(`Fork ${s.name}`, [
    field("New stream name", name),
    field("Fork at offset", offset, "the fork reads the source up to here, then its own appends"),
  ], "Fork", async () => {
    const n = canonicalName(name.value);
    await streams.create(n, { forkedFrom: s.name, forkOffset: offset.value.trim() });
    go(`#/s/${n}`);
  });
}
