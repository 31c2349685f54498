// Which operation a request is, from its method, path and headers alone, so routes added
// later (subscriptions under /v1/stream/__ds/, the admin API under /v1/admin/) are covered
// without touching their handlers. Subscription management and claims need `admin` on the
// path `__ds/...`, so a grant on `__ds/subscriptions/<id>/**` scopes a worker to one subscription.
import type { Op } from "./permissions.ts";

export const STREAM_ROOT = "/v1/stream/";
const ADMIN_ROOT = "/v1/admin/";
const SUBSCRIPTIONS = "__ds";

export interface Check {
  op: Op;
  /** Stream-root-relative path the op is checked against; null is never allowed. */
  path: string | null;
}

export type Operation =
  | { kind: "public" }
  /** Authenticated by the handler itself; only the caller's address is rate limited. */
  | { kind: "self" }
  | { kind: "guarded"; checks: Check[]; live: boolean; append: boolean };

const PUBLIC = { kind: "public" } as const;

export function classify(method: string, url: URL, headers: Headers): Operation {
  const pathname = url.pathname;
  // CORS preflights carry no credentials by design (Fetch standard).
  if (method === "OPTIONS") return PUBLIC;
  if (pathname.startsWith(STREAM_ROOT)) {
    const path = pathname.slice(STREAM_ROOT.length);
    if (path === SUBSCRIPTIONS || path.startsWith(`${SUBSCRIPTIONS}/`)) {
      return selfAuthenticated(method, path) ? { kind: "self" } : admin(path);
    }
    const live = url.searchParams.get("live");
    switch (method) {
      case "GET":
      case "HEAD":
        return guarded([{ op: "read", path }], method === "GET" && (live === "sse" || live === "long-poll"));
      case "POST":
        return { ...guarded([{ op: "append", path }]), append: true };
      case "PUT": {
        const checks: Check[] = [{ op: "create", path }];
        const source = headers.get("stream-forked-from");
        // A fork reads its source: the source needs read permission too.
        if (source !== null) checks.push({ op: "read", path: forkSource(source.trim()) });
        return guarded(checks);
      }
      case "DELETE":
        return guarded([{ op: "delete", path }]);
      default:
        // Other methods are answered 405 by the routes; they still need some permission so an
        // anonymous caller learns nothing. Treat them as the strongest stream operation.
        return guarded([{ op: "delete", path }]);
    }
  }
  if (pathname === ADMIN_ROOT.slice(0, -1) || pathname.startsWith(ADMIN_ROOT)) {
    return admin(`__admin/${pathname.slice(ADMIN_ROOT.length)}`);
  }
  // /healthz, /metrics, the static page under /ui/, and 404s for anything else.
  return PUBLIC;
}

// Subscription requests that carry the subscription layer's own signed tokens (PROTOCOL 7:
// callback and claim tokens in Authorization, checked there on every request, 12.9) or that
// webhook receivers fetch anonymously (the signing keys, 6). An API key is not what they hold.
const CALLBACKS = /^__ds\/subscriptions\/[^/]+\/(callback|ack|release)$/;

function selfAuthenticated(method: string, path: string): boolean {
  if (path === "__ds/jwks.json") return method === "GET" || method === "HEAD";
  return method === "POST" && CALLBACKS.test(path);
}

function guarded(checks: Check[], live = false) {
  return { kind: "guarded" as const, checks, live, append: false };
}

function admin(path: string): Operation {
  return guarded([{ op: "admin", path }]);
}

/** The source's stream-root-relative path, or null when it cannot name a stream we may check. */
function forkSource(source: string): string | null {
  if (!source.startsWith(STREAM_ROOT)) return null;
  const path = source.slice(STREAM_ROOT.length);
  // The store looks the source up as an exact key, and keys never hold dot segments (URLs are
  // normalised first); refuse them anyway so no pattern can be walked out of.
  if (path.split("/").some((s) => /^(\.|%2e){1,2}$/i.test(s))) return null;
  return path;
}
