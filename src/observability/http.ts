// Wraps the app's fetch handler at the outermost boundary: gives every request an id
// (X-Request-Id, taken from the client when trusted and well-formed), opens the log
// context that tags every line of the request with it, counts and times the request by
// operation (the label of the route it matched in http/routes.ts, the same route the guard
// checks and the handler serves), writes the optional access log line, and serves /metrics.
import type { Config } from "../settings.ts";
import { targetOf } from "../http/target.ts";
import { serve, type ServerHandle } from "../runtime/serve.ts";
import { log, requestContext, type RequestContext } from "./log.ts";
import { httpDuration, httpRequests, metricsText } from "./metrics.ts";

import type { ConnInfo } from "../runtime/serve.ts";

type Fetch = (request: Request, conn?: ConnInfo) => Response | Promise<Response>;

export type HttpObservability = Pick<Config, "TRUST_REQUEST_ID" | "ACCESS_LOG" | "METRICS_PORT">;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
// Ids end up in log lines: accept only what cannot forge fields or lines.
const GOOD_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;

/**
 * The operation a request asks for: a bounded label set, never the stream's name. A target
 * that does not parse (400 before any route) is "other", its path logged as the runtime gave it.
 */
export function operationOf(request: Request): { operation: string; path: string } {
  try {
    const t = targetOf(request);
    return { operation: t.route.operation, path: t.path };
  } catch {
    return { operation: "other", path: splitUrl(request.url) };
  }
}

function splitUrl(url: string): string {
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

async function metricsResponse(): Promise<Response> {
  const { body, contentType } = await metricsText();
  return new Response(body, { headers: { "Content-Type": contentType, "Cache-Control": "no-store" } });
}

export function observeHttp(fetch: Fetch, config: HttpObservability): Fetch {
  const trust = config.TRUST_REQUEST_ID === "true";
  const access = config.ACCESS_LOG === "true";
  const metricsHere = config.METRICS_PORT === undefined;
  return (request, conn) => {
    const started = performance.now();
    const given = trust ? request.headers.get("x-request-id") : null;
    const ctx: RequestContext = { id: given !== null && GOOD_ID.test(given) ? given : crypto.randomUUID() };
    const { operation, path } = operationOf(request);
    const method = METHODS.has(request.method) ? request.method : "other";
    return requestContext.run(ctx, async () => {
      let response: Response;
      try {
        response = operation === "metrics" && metricsHere && request.method === "GET" ? await metricsResponse() : await fetch(request, conn);
      } catch (err) {
        // The app maps every error itself; reaching here is a bug, but still an answer.
        log.error({ err, method, path }, "request handler threw");
        response = new Response("internal server error", { status: 500 });
      }
      const seconds = (performance.now() - started) / 1000;
      const status = response.status;
      httpRequests.labels(method, operation, String(status)).inc();
      httpDuration.labels(operation).observe(seconds);
      response.headers.set("X-Request-Id", ctx.id);
      if (access) {
        const line = { method, operation, path, status, durationMs: Math.round(seconds * 1e4) / 10, error: ctx.error };
        if (status >= 500) log.warn(line, "request");
        else log.info(line, "request");
      }
      return response;
    });
  };
}

/** With METRICS_PORT set, /metrics is served there (and nowhere else). */
export async function startMetricsServer(config: Pick<Config, "METRICS_PORT" | "HOST">): Promise<ServerHandle | undefined> {
  if (config.METRICS_PORT === undefined) return undefined;
  const handler = (request: Request) =>
    splitUrl(request.url) === "/metrics" ? metricsResponse() : new Response("not found", { status: 404 });
  return serve(handler, { PORT: config.METRICS_PORT, HOST: config.HOST, MAX_BODY_BYTES: 0, REQUEST_IDLE_TIMEOUT_S: 30 });
}
