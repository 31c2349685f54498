// The admin surface as one Elysia plugin: the JSON admin API and the Inspector page.
// Authentication (another branch) is expected to guard /v1/admin/ with the admin permission;
// the page itself is public, it only holds code.
import { Elysia } from "elysia";
import type { AppContext } from "../http/context.ts";
import { errorResponse } from "../http/respond.ts";
import { requestUrl } from "../http/request-url.ts";
import { ADMIN_CONTENT, ADMIN_STREAMS, handleContent, handleDescribe, handleList } from "./api.ts";
import { ADMIN_SUBSCRIPTIONS, handleSubscriptionDescribe, handleSubscriptionList } from "./subscriptions.ts";
import { redirectToUi, serveUi, UI_ROOT } from "./static.ts";

type Handler = (request: Request, url: URL) => Response | Promise<Response>;

function guarded(fn: Handler) {
  return async ({ request }: { request: Request }) => {
    try {
      return await fn(request, requestUrl(request));
    } catch (err) {
      return errorResponse(err, request.method);
    }
  };
}

export function adminRoutes(ctx: AppContext) {
  const opts = { parse: "none" as const };
  return new Elysia({ name: "admin" })
    .get(ADMIN_STREAMS, guarded((_req, url) => handleList(ctx, url)), opts)
    .get(`${ADMIN_STREAMS}/*`, guarded((_req, url) => handleDescribe(ctx, url)), opts)
    .get(ADMIN_SUBSCRIPTIONS, guarded((_req, url) => handleSubscriptionList(ctx, url)), opts)
    .get(`${ADMIN_SUBSCRIPTIONS}/*`, guarded((_req, url) => handleSubscriptionDescribe(ctx, url)), opts)
    .get(`${ADMIN_CONTENT}*`, guarded((_req, url) => handleContent(ctx, url)), opts)
    .get("/", () => redirectToUi())
    // Elysia routes "/ui" and "/ui/" alike; only the bare one is sent to the page's root.
    .get("/ui", guarded((req, url) => (url.pathname === "/ui" ? redirectToUi() : serveUi(req, url))), opts)
    .get(`${UI_ROOT}*`, guarded((req, url) => serveUi(req, url)), opts);
}
