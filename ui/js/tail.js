// The live tail panel: rows appear as the server pushes them over SSE; pause/resume.
import { h, mount } from "./dom.js";
import { itemRow } from "./content.js";
import { liveTail } from "./live.js";

const MAX_ROWS = 1000;

export function tailPanel(stream, report) {
  const rows = h("tbody");
  const status = h("span", { class: "status", "data-testid": "tail-status" }, "stopped");
  const counter = h("span", { class: "muted" });
  let received = 0;
  let tail;
  const toggle = h("button", { class: "primary", "data-testid": "tail-toggle", onclick: () => {
    if (!tail) {
      tail = liveTail(stream.name, stream.kind, stream.tailOffset, { onRows, onState });
    } else if (toggle.dataset.state === "live") {
      tail.pause();
    } else {
      tail.resume();
    }
  } }, "Start live tail");

  function onRows(items) {
    received += items.length;
    for (const item of items) rows.append(itemRow(item));
    while (rows.childElementCount > MAX_ROWS) rows.firstElementChild.remove();
    counter.textContent = `${received} received`;
    const last = rows.lastElementChild;
    last?.classList.add("fresh");
    if (el.querySelector(".tail-scroll").scrollHeight - el.querySelector(".tail-scroll").scrollTop < 600) last?.scrollIntoView({ block: "nearest" });
  }

  function onState(state) {
    if (state instanceof Error) {
      status.textContent = "error, retrying";
      status.className = "status error";
      report(state);
      return;
    }
    status.textContent = state;
    status.className = `status ${state}`;
    toggle.dataset.state = state;
    toggle.textContent = state === "live" || state === "reconnecting" ? "Pause" : state === "closed" ? "Stream closed" : "Resume";
    toggle.disabled = state === "closed";
  }

  const el = h("section", { class: "card tail", "data-testid": "tail" },
    h("header", {}, h("h2", {}, "Live tail"), status, counter, h("span", { class: "spacer" }), toggle),
    h("div", { class: "tail-scroll" },
      h("table", { class: "items" }, h("thead", {}, h("tr", {}, h("th", {}, stream.kind === "json" ? "Message" : "Byte"), h("th", {}, "Data"))), rows)),
  );
  mount(rows);
  return { el, stop: () => tail?.stop() };
}
