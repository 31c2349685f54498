// The Elysia app: routes for /v1/stream/* and /healthz. Bodies are never parsed by the
// framework (parse: "none"); handlers read raw bytes with a size cap.
import { Elysia } from "elysia";
import { adminRoutes } from "../admin/routes.ts";
import { MethodNotAllowed } from "../protocol/errors.ts";
import { requestUrl } from "./request-url.ts";
import { type AppContext, STREAM_PREFIX } from "./context.ts";
import { handleRead } from "./read.ts";
import { handleControl, isControlPath } from "./subscriptions.ts";
import { ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS, errorResponse, respond } from "./respond.ts";
import { noteRequestError } from "../observability/log.ts";
import { handleAppend, handleCreate, handleDelete, handleHead } from "./write.ts";

type Handler = (request: Request, url: URL) => Promise<Response>;


export function buildApp(ctx: AppContext, health: () => { ok: boolean; detail: Record<string, unknown> }) {
  // PROTOCOL 6: the reserved __ds prefix is routed before any stream operation.
  const guarded = (fn: Handler) => async ({ request }: { request: Request }) => {
    try {
      const url = requestUrl(request);
      if (isControlPath(url.pathname)) return await handleControl(ctx.subscriptions, request, url, ctx.config.MAX_BODY_BYTES);
      return await fn(request, url);
    } catch (err) {
      noteRequestError(err);
      return errorResponse(err, request.method);
    }
  };
  const route = `${STREAM_PREFIX}*`;
  const opts = { parse: "none" as const };
  const append = guarded((req, url) => handleAppend(ctx, req, url));
  const app = new Elysia()
    .get("/healthz", () => {
      const { ok, detail } = health();
      return respond(ok ? 200 : 503, { "Content-Type": "application/json", "Cache-Control": "no-store" }, JSON.stringify({ ok, ...detail }));
    })
    .options(route, () =>
      respond(204, {
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
        "Access-Control-Max-Age": "86400",
      }),
    )
    .put(route, guarded((req, url) => handleCreate(ctx, req, url)), opts)
    .post(route, append, opts)
    // Elysia answers HEAD through the GET route, so the method is told apart here.
    .get(route, guarded((req, url) => (req.method === "HEAD" ? handleHead(ctx, url) : handleRead(ctx, req, url))), opts)
    .delete(route, guarded((_req, url) => handleDelete(ctx, url)), opts)
    .patch(route, guarded(async () => {
      throw new MethodNotAllowed("method not allowed on a stream");
    }), opts)
    // The Inspector: admin API (/v1/admin/) and its page (/ui/, / redirects there).
    .use(adminRoutes(ctx))
    .onError(({ code, request }) => {
      if (code === "NOT_FOUND") return respond(404, { "Content-Type": "text/plain" }, "not found");
      return errorResponse(new Error(`framework error ${String(code)}`), request.method);
    });
  // Appends are the hot path: fetchHandler hands them to the handler directly, skipping
  // the router (the same handler the POST route has, so nothing else differs).
  return Object.assign(app, { appendHandler: (request: Request) => append({ request }) });
}

/**
 * The app's fetch handler. Elysia looks for the path from the URL's 12th character on, so
 * with a Host shorter than 4 characters ("api", a typical container name) it would cut
 * into the path and answer 404; such a URL gets the scheme's default port spelled out,
 * which changes neither its origin nor its meaning.
 */
export function fetchHandler(app: { fetch: (r: Request) => Response | Promise<Response>; appendHandler?: (r: Request) => Promise<Response> }) {
  const direct = app.appendHandler;
  return (request: Request) => {
    const url = request.url;
    const pathAt = url.indexOf("/", url.indexOf("//") + 2);
    if (direct && request.method === "POST" && pathAt > 0 && url.startsWith(STREAM_PREFIX, pathAt)) return direct(request);
    if (pathAt === -1 || pathAt >= 11) return app.fetch(request);
    const host = url.slice(0, pathAt);
    if (host.lastIndexOf(":") > 5) return app.fetch(request); // has a port: nothing to pad
    const port = url.startsWith("https:") ? 443 : 80;
    let padded: Request;
    try {
      padded = new Request(`${host}:${port}${url.slice(pathAt)}`, request);
    } catch {
      // The runtime will not build a Request with this method (TRACE, or one Deno passes
      // through unnormalised): the router answers the original, at worst with a 404.
      return app.fetch(request);
    }
    return app.fetch(padded);
  };
}
