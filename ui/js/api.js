// Everything the page sends to the server. Admin views come from /v1/admin/; changes go
// through the Durable Streams protocol itself. A bearer token, when one is set, rides on
// every request; it lives in sessionStorage only, so it is gone when the tab closes.
const TOKEN_KEY = "inspector.token";
export const STREAM_ROOT = "/v1/stream/";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A failed request, with the server's own words. */
export class ServerError extends Error {
  constructor(status, statusText, body, what) {
    const head = status ? `${status} ${statusText}`.trim() : statusText;
    super(`${what}: ${head}${body ? ` — ${body}` : ""}`);
    this.status = status;
    this.body = body;
  }
}

export function authHeaders(extra = {}) {
  const headers = new Headers(extra);
  const t = token.get();
  if (t) headers.set("Authorization", `Bearer ${t}`);
  return headers;
}

async function call(method, url, what, { headers, body, signal } = {}) {
  let res;
  try {
    res = await fetch(url, { method, headers: authHeaders(headers), body, signal, cache: "no-store" });
  } catch (err) {
    throw new ServerError(0, "network error", err?.message ?? String(err), what);
  }
  if (!res.ok) {
    const text = (await res.text().catch(() => "")).trim();
    throw new ServerError(res.status, res.statusText, text, what);
  }
  return res;
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
};

/** Stream names are used as stored: the raw (URL-encoded) path below the stream root. */
export const streamUrl = (name) => STREAM_ROOT + name;

export const admin = {
  list: ({ prefix, after, limit }) =>
    call("GET", `/v1/admin/streams${query({ prefix, after, limit })}`, "listing streams").then((r) => r.json()),
  describe: (name) => call("GET", `/v1/admin/streams/${name}`, `loading ${name}`).then((r) => r.json()),
  content: (name, offset, limit) =>
    call("GET", `/v1/admin/content/${name}${query({ offset, limit })}`, `reading ${name}`).then((r) => r.json()),
  subscriptions: ({ prefix, after, limit }) =>
    call("GET", `/v1/admin/subscriptions${query({ prefix, after, limit })}`, "listing subscriptions").then((r) => r.json()),
  subscription: (id, { after, limit } = {}) =>
    call("GET", `/v1/admin/subscriptions/${encodeURIComponent(id)}${query({ after, limit })}`, `loading subscription ${id}`).then((r) => r.json()),
  health: () => fetch("/healthz", { cache: "no-store" }).then((r) => r.json()),
};

export const streams = {
  create(name, { contentType, ttl, expiresAt, body, forkedFrom, forkOffset }) {
    const headers = {};
    if (contentType) headers["Content-Type"] = contentType;
    if (ttl) headers["Stream-TTL"] = ttl;
    if (expiresAt) headers["Stream-Expires-At"] = expiresAt;
    if (forkedFrom) headers["Stream-Forked-From"] = streamUrl(forkedFrom);
    if (forkOffset) headers["Stream-Fork-Offset"] = forkOffset;
    return call("PUT", streamUrl(name), forkedFrom ? `forking ${forkedFrom}` : `creating ${name}`, { headers, body: body || undefined });
  },
  append: (name, contentType, body) =>
    call("POST", streamUrl(name), `appending to ${name}`, { headers: { "Content-Type": contentType }, body }),
  close: (name) => call("POST", streamUrl(name), `closing ${name}`, { headers: { "Stream-Closed": "true" } }),
  remove: (name) => call("DELETE", streamUrl(name), `deleting ${name}`),
};

/** The name as the server will store it: what the browser's URL encoding makes of it. */
export const canonicalName = (name) =>
  new URL(streamUrl(name.trim().replace(/^\/+/, "")), location.origin).pathname.slice(STREAM_ROOT.length);
