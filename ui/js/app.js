// The Inspector's shell: header (sections, instance health, bearer token), an error banner
// that shows the server's own words, and a hash router between the stream list, a stream,
// the subscription list and a subscription.
import { admin, token } from "./api.js";
import { readable } from "./format.js";
import { h, mount } from "./dom.js";
import { listView } from "./list.js";
import { streamView } from "./stream.js";
import { subscriptionListView, subscriptionView } from "./subscriptions.js";

const main = document.querySelector("main");
const banner = document.querySelector("#banner");
let leave = [];

function report(err) {
  const needsToken = err?.status === 401 || err?.status === 403;
  mount(banner,
    h("span", { "data-testid": "error" }, err?.message ?? String(err)),
    needsToken ? h("span", {}, " — enter a token above.") : null,
    h("button", { class: "link", "aria-label": "dismiss", onclick: () => (banner.hidden = true) }, "×"),
  );
  banner.hidden = false;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  for (const fn of leave) fn();
  leave = [];
  banner.hidden = true;
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query ?? "");
  const ctx = { go, report, onLeave: (fn) => leave.push(fn) };
  const section = path === "/subs" || path.startsWith("/subs/") ? "subs" : "streams";
  for (const a of document.querySelectorAll("header.top nav a")) a.classList.toggle("active", a.dataset.section === section);
  if (path.startsWith("/subs/") && path.length > 6) {
    let id = path.slice(6);
    try {
      id = decodeURIComponent(id);
    } catch {
      // not valid URL encoding: look it up as written, the server answers
    }
    document.title = `${id} · Subscriptions · Inspector`;
    await subscriptionView(main, id, params, ctx);
  } else if (section === "subs") {
    document.title = "Subscriptions · Inspector";
    await subscriptionListView(main, params, ctx);
  } else if (path.startsWith("/s/") && path.length > 3) {
    const name = path.slice(3);
    document.title = `${readable(name)} · Inspector`;
    await streamView(main, name, params, ctx);
  } else {
    document.title = "Streams · Inspector";
    await listView(main, params, ctx);
  }
}

function header() {
  const input = h("input", {
    type: "password", autocomplete: "off", placeholder: "bearer token (optional)", value: token.get(),
    "aria-label": "bearer token", "data-testid": "token",
  });
  // Kept for this tab only (sessionStorage); an empty field sends no Authorization header.
  input.addEventListener("change", () => {
    token.set(input.value.trim());
    route();
  });
  const health = h("span", { class: "health muted" });
  admin.health().then(
    (x) => mount(health, h("span", { class: `dot ${x.ok ? "ok" : "bad"}` }), `${x.database} · listener ${x.listener}`),
    () => mount(health, h("span", { class: "dot bad" }), "health unknown"),
  );
  mount(document.querySelector("header.top"),
    h("a", { href: "#/", class: "brand" }, "Durable Streams ", h("b", {}, "Inspector")),
    h("nav", { class: "sections" },
      h("a", { href: "#/", "data-section": "streams", "data-testid": "nav-streams" }, "Streams"),
      h("a", { href: "#/subs", "data-section": "subs", "data-testid": "nav-subs" }, "Subscriptions"),
    ),
    health,
    h("span", { class: "spacer" }),
    input,
  );
}

window.addEventListener("hashchange", route);
header();
route();
