// The Elysia app: routes for /v1/stream/* and /healthz. Bodies are never parsed by the
// framework (parse: "none"); handlers read raw bytes with a size cap.
import { Elysia } from "elysia";
import { MethodNotAllowed } from "../protocol/errors.ts";
import { type AppContext, STREAM_PREFIX } from "./context.ts";
import { handleRead } from "./read.ts";
import { ALLOWED_METHODS, ALLOWED_REQUEST_HEADERS, errorResponse, respond } from "./respond.ts";
import { noteRequestError } from "../observability/log.ts";
import { handleAppend, handleCreate, handleDelete, handleHead } from "./write.ts";

type Handler = (request: Request, url: URL) => Promise<Response>;

function guarded(fn: Handler) {
  return async ({ request }: { request: Request }) => {
    try {
      return await fn(request, new URL(request.url));
    } catch (err) {
      noteRequestError(err);
      return errorResponse(err, request.method);
    }
  };
}

export function buildApp(ctx: AppContext, health: () => { ok: boolean; detail: Record<string, unknown> }) {
  const route = `${STREAM_PREFIX}*`;
  const opts = { parse: "none" as const };
  return new Elysia()
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
    .post(route, guarded((req, url) => handleAppend(ctx, req, url)), opts)
    // Elysia answers HEAD through the GET route, so the method is told apart here.
    .get(route, guarded((req, url) => (req.method === "HEAD" ? handleHead(ctx, url) : handleRead(ctx, req, url))), opts)
    .delete(route, guarded((_req, url) => handleDelete(ctx, url)), opts)
    .patch(route, guarded(async () => {
      throw new MethodNotAllowed("method not allowed on a stream");
    }), opts)
    .onError(({ code, request }) => {
      if (code === "NOT_FOUND") return respond(404, { "Content-Type": "text/plain" }, "not found");
      return errorResponse(new Error(`framework error ${String(code)}`), request.method);
    });
}
