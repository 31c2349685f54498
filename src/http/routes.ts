// The one route table: method and path pattern -> operation (also the metrics label), the
// permission checks the guard makes, the live/append limits it applies, whether browsers
// of other origins may read the answer (CORS), and the handler. The guard, the metrics and
// the dispatcher all read the route that targetOf() matched here, once per request.
//
// Elysia is not on the request path any more: its router found the path from request.url's
// 12th character on, whatever the Host's length, so guard and handler could disagree on the
// path (issue 25.4), and it needed a padded URL and a direct POST shortcut around it. The
// handlers use none of its features (bodies are read raw, nothing is validated by schema),
// so routing is this table and a loop over a dozen entries: appends, the hot path, match on
// the fourth entry with two string comparisons.
import { CONTROL_PREFIX } from "../protocol/paths.ts";
import { ADMIN_CONTENT, ADMIN_STREAMS, handleContent, handleDescribe, handleList } from "../admin/api.ts";
import { redirectToUi, serveUi, UI_ROOT } from "../admin/static.ts";
import { ADMIN_SUBSCRIPTIONS, handleSubscriptionDescribe, handleSubscriptionList } from "../admin/subscriptions.ts";
import type { Op } from "../auth/permissions.ts";
import { MethodNotAllowed } from "../protocol/errors.ts";
import { type AppContext, STREAM_PREFIX } from "./context.ts";
import { handleRead } from "./read.ts";
import { ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS, respond } from "./respond.ts";
import { handleControl } from "./subscriptions.ts";
import type { Target } from "./target.ts";
import { handleAppend, handleCreate, handleDelete, handleHead } from "./write.ts";

export interface Check {
  op: Op;
  /** Stream-root-relative path the op is checked against; null is never allowed. */
  path: string | null;
}

export type Access =
  | { kind: "public" }
  /** Authenticated by the handler itself (subscription tokens); only the address is rate limited. */
  | { kind: "self" }
  | { kind: "guarded"; checks: Check[] };

export interface Route {
  /** The operation's name: the metrics label and the access log's `operation`. */
  operation: string;
  access: (t: Target, headers: Headers) => Access;
  /** Counts against the live-read limits (SSE, long-poll). */
  live?: boolean;
  /** Counts against APPENDS_IN_FLIGHT_MAX. */
  append?: boolean;
  /** Answers carry `Access-Control-Allow-Origin: *` (the protocol's routes); the admin API and page never do. */
  cors: boolean;
  /** Answered whatever the Host header when auth is off (health checks name the instance). */
  anyHost?: boolean;
  handle: (ctx: AppContext, request: Request, t: Target) => Response | Promise<Response>;
}

const ADMIN_ROOT = "/v1/admin";
const CONTROL = CONTROL_PREFIX;

const PUBLIC: Access = { kind: "public" };
const publicAccess = () => PUBLIC;
const guarded = (...checks: Check[]): Access => ({ kind: "guarded", checks });
const streamName = (t: Target) => t.path.slice(STREAM_PREFIX.length);
const onStream = (op: Op) => (t: Target) => guarded({ op, path: streamName(t) });
// The admin API is checked as `admin` on `__admin/<rest>`, so a grant can scope it.
const adminAccess = (t: Target) => guarded({ op: "admin", path: `__admin/${t.path.slice(ADMIN_ROOT.length + 1)}` });
const notFound = () => respond(404, { "Content-Type": "text/plain" }, "not found");

// Subscription requests that carry the subscription layer's own signed tokens (PROTOCOL 7:
// callback and claim tokens in Authorization, checked there on every request, 12.9) or that
// webhook receivers fetch anonymously (the signing keys, 6). Everything else under __ds is
// managed with `admin` on `__ds/...`, so a grant on `__ds/subscriptions/<id>/**` scopes a worker.
const CALLBACKS = /^__ds\/subscriptions\/[^/]+\/(callback|ack|release)$/;
function controlAccess(t: Target): Access {
  const path = streamName(t);
  if (path === "__ds/jwks.json" && (t.method === "GET" || t.method === "HEAD")) return { kind: "self" };
  if (t.method === "POST" && CALLBACKS.test(path)) return { kind: "self" };
  return guarded({ op: "admin", path });
}

function createAccess(t: Target, headers: Headers): Access {
  const source = headers.get("stream-forked-from");
  // A fork reads its source: the source needs read permission too.
  if (source === null) return guarded({ op: "create", path: streamName(t) });
  return guarded({ op: "create", path: streamName(t) }, { op: "read", path: forkSource(source.trim()) });
}

/** The source's stream-root-relative path, or null when it cannot name a stream we may check. */
function forkSource(source: string): string | null {
  if (!source.startsWith(STREAM_PREFIX)) return null;
  const path = source.slice(STREAM_PREFIX.length);
  // The store looks the source up as an exact key, and keys never hold dot segments (paths
  // are in normal form); refuse them anyway so no pattern can be walked out of.
  if (path.split("/").some((s) => /^(\.|%2e){1,2}$/i.test(s))) return null;
  return path;
}

const stream = (operation: string, op: Op, handle: Route["handle"], extra: Partial<Route> = {}): Route => ({
  operation,
  access: onStream(op),
  cors: true,
  handle,
  ...extra,
});
const admin = (handle: Route["handle"]): Route => ({ operation: "admin", access: adminAccess, cors: false, handle });
const page = (handle: Route["handle"]): Route => ({ operation: "ui", access: publicAccess, cors: false, handle });

interface Entry {
  /** Methods this entry answers; "*" for any. HEAD is listed where GET's answer fits it. */
  methods: readonly string[] | "*";
  /** An exact path, or a prefix followed by "*" (the rest may be empty). */
  path: string;
  /** A further condition on the query (GET on a stream: which kind of read). */
  when?: (t: Target) => boolean;
  route: Route;
}

const GET = ["GET", "HEAD"] as const;
const liveIs = (mode: string) => (t: Target) => t.params.get("live") === mode;

// First match wins: the reserved __ds prefix before any stream operation (PROTOCOL 6).
export const ROUTES: readonly Entry[] = [
  {
    methods: ["OPTIONS"],
    path: `${STREAM_PREFIX}*`,
    // CORS preflights carry no credentials by design (Fetch standard).
    route: {
      operation: "preflight",
      access: publicAccess,
      cors: true,
      handle: () =>
        respond(204, {
          "Access-Control-Allow-Methods": ALLOWED_METHODS,
          "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
          "Access-Control-Max-Age": "86400",
        }),
    },
  },
  ...[CONTROL, `${CONTROL}/*`].map((path) => ({
    methods: "*" as const,
    path,
    route: {
      operation: "subscription",
      access: controlAccess,
      cors: true,
      handle: (ctx: AppContext, request: Request, t: Target) => handleControl(ctx.subscriptions, request, t.url, ctx.config.MAX_BODY_BYTES),
    },
  })),
  { methods: ["POST"], path: `${STREAM_PREFIX}*`, route: stream("append", "append", (ctx, req, t) => handleAppend(ctx, req, t), { append: true }) },
  { methods: ["PUT"], path: `${STREAM_PREFIX}*`, route: { ...stream("create", "create", (ctx, req, t) => handleCreate(ctx, req, t)), access: createAccess } },
  { methods: ["GET"], path: `${STREAM_PREFIX}*`, when: liveIs("sse"), route: stream("sse", "read", handleRead, { live: true }) },
  { methods: ["GET"], path: `${STREAM_PREFIX}*`, when: liveIs("long-poll"), route: stream("long-poll", "read", handleRead, { live: true }) },
  { methods: ["GET"], path: `${STREAM_PREFIX}*`, route: stream("read", "read", handleRead) },
  { methods: ["HEAD"], path: `${STREAM_PREFIX}*`, route: stream("head", "read", (ctx, _req, t) => handleHead(ctx, t)) },
  { methods: ["DELETE"], path: `${STREAM_PREFIX}*`, route: stream("delete", "delete", (ctx, _req, t) => handleDelete(ctx, t)) },
  {
    methods: "*",
    path: `${STREAM_PREFIX}*`,
    // Checked as the strongest stream operation, so an anonymous caller learns nothing.
    route: stream("other", "delete", () => {
      const e = new MethodNotAllowed("method not allowed on a stream");
      e.headers = { Allow: ALLOWED_METHODS };
      throw e;
    }),
  },
  {
    methods: GET,
    path: "/healthz",
    route: { operation: "health", access: publicAccess, cors: true, anyHost: true, handle: (ctx) => health(ctx) },
  },
  // Served by observability/http.ts before routing when METRICS_PORT is unset; else not here.
  { methods: GET, path: "/metrics", route: { operation: "metrics", access: publicAccess, cors: true, anyHost: true, handle: notFound } },
  { methods: GET, path: ADMIN_STREAMS, route: admin((ctx, _req, t) => handleList(ctx, t.url)) },
  { methods: GET, path: `${ADMIN_STREAMS}/*`, route: admin((ctx, _req, t) => handleDescribe(ctx, t.url)) },
  { methods: GET, path: ADMIN_SUBSCRIPTIONS, route: admin((ctx, _req, t) => handleSubscriptionList(ctx, t.url)) },
  { methods: GET, path: `${ADMIN_SUBSCRIPTIONS}/*`, route: admin((ctx, _req, t) => handleSubscriptionDescribe(ctx, t.url)) },
  { methods: GET, path: `${ADMIN_CONTENT}*`, route: admin((ctx, _req, t) => handleContent(ctx, t.url)) },
  // Anything else under /v1/admin (preflights included) is a 404, after the admin check.
  ...[ADMIN_ROOT, `${ADMIN_ROOT}/*`].map((path) => ({ methods: "*" as const, path, route: admin(notFound) })),
  // The Inspector page (public: it only holds code); it talks to the admin API same-origin.
  { methods: GET, path: "/", route: page(redirectToUi) },
  { methods: GET, path: UI_ROOT.slice(0, -1), route: page(redirectToUi) },
  { methods: GET, path: `${UI_ROOT}*`, route: page((_ctx, req, t) => serveUi(req, t.path)) },
];

const NOT_FOUND: Route = { operation: "other", access: publicAccess, cors: true, handle: notFound };

// The table compiled once: a prefix or an exact path per entry, so matching allocates nothing.
const COMPILED = ROUTES.map((e) => ({
  ...e,
  prefix: e.path.endsWith("*") ? e.path.slice(0, -1) : undefined,
}));

export function matchRoute(t: Target): Route {
  const { method, path } = t;
  for (const e of COMPILED) {
    if (e.methods !== "*" && !e.methods.includes(method)) continue;
    if (e.prefix === undefined ? path !== e.path : !path.startsWith(e.prefix)) continue;
    if (e.when && !e.when(t)) continue;
    return e.route;
  }
  return NOT_FOUND;
}

function health(ctx: AppContext): Response {
  const { ok, detail } = ctx.health?.() ?? { ok: true, detail: {} };
  return respond(ok ? 200 : 503, { "Content-Type": "application/json", "Cache-Control": "no-store" }, JSON.stringify({ ok, ...detail }));
}

