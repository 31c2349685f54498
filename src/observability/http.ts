// Wraps the app's fetch handler at the outermost boundary: gives every request an id
// (X-Request-Id, taken from the client when trusted and well-formed), opens the log
// context that tags every line of the request with it, counts and times the request by
// operation, writes the optional access log line, and serves /metrics.
import type { Config } from "../config.ts";
import { serve, type ServerHandle } from "../runtime/serve.ts";
import { log, requestContext, type RequestContext } from "./log.ts";
import { httpDuration, httpRequests, metricsText } from "./metrics.ts";

import type { ConnInfo } from "../runtime/serve.ts";

type Fetch = (request: Request, conn?: ConnInfo) => Response | Promise<Response>;

export type HttpObservability = Pick<Config, "TRUST_REQUEST_ID" | "ACCESS_LOG" | "METRICS_PORT">;

const STREAMS = "/v1/stream/";
const RESERVED = "/v1/stream/__ds";
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
// Ids end up in log lines: accept only what cannot forge fields or lines.
const GOOD_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;
const LIVE = /(?:^|&)live=(sse|long-poll)(?:&|$)/;

/** The operation a request asks for: a bounded label set, never the stream's name. */
export function operationOf(method: string, path: string, query: string): string {
  if (path === "/healthz") return "health";
  if (path === "/metrics") return "metrics";
  if (path.startsWith(RESERVED)) return "subscription";
  if (!path.startsWith(STREAMS)) return "other";
  switch (method) {
    case "PUT":
      return "create";
    case "POST":
      return "append";
    case "DELETE":
      return "delete";
    case "HEAD":
      return "head";
    case "OPTIONS":
      return "preflight";
    case "GET":
      return LIVE.exec(query)?.[1] ?? "read";
    default:
      return "other";
  }
}

function splitUrl(url: string): { path: string; query: string } {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return { path: "/", query: "" };
  const q = url.indexOf("?", start);
  return q < 0 ? { path: url.slice(start), query: "" } : { path: url.slice(start, q), query: url.slice(q + 1) };
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
    const { path, query } = splitUrl(request.url);
    const method = METHODS.has(request.method) ? request.method : "other";
    const operation = operationOf(request.method, path, query);
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
    splitUrl(request.url).path === "/metrics" ? metricsResponse() : new Response("not found", { status: 404 });
  return serve(handler, { PORT: config.METRICS_PORT, HOST: config.HOST, MAX_BODY_BYTES: 0, REQUEST_IDLE_TIMEOUT_S: 30 });
}
