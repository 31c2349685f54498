// Response construction in one place: the headers every response carries, and the
// mapping from typed protocol errors to status codes.
import { noteRequestError } from "../observability/log.ts";
import { type HeaderMap, ProtocolError, SubscriptionError } from "../protocol/errors.ts";
import { isConnectionError } from "../store/index.ts";
import { log } from "../observability/log.ts";

/** Headers a browser must be allowed to read (CORS). */
const EXPOSED = [
  "Stream-Next-Offset", "Stream-Cursor", "Stream-Up-To-Date", "Stream-Closed", "Stream-TTL", "Stream-Expires-At",
  "Stream-SSE-Data-Encoding", "ETag", "Location", "Content-Type", "Producer-Epoch", "Producer-Seq",
  "Producer-Expected-Seq", "Producer-Received-Seq", "Retry-After", "WWW-Authenticate", "Stream-Earliest-Offset",
  "Stream-Retention-Max-Age", "Stream-Retention-Max-Bytes", "Stream-Compaction",
].join(", ");

export const ALLOWED_REQUEST_HEADERS = [
  "Content-Type", "Stream-TTL", "Stream-Expires-At", "Stream-Seq", "Stream-Closed", "Stream-Forked-From",
  "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", "Producer-Id", "Producer-Epoch", "Producer-Seq",
  "Stream-Expected-Offset", "If-None-Match", "Authorization", "Cache-Control", "Stream-Retention-Max-Age",
  "Stream-Retention-Max-Bytes", "Stream-Compaction",
].join(", ");

export const ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

// Browser security headers (PROTOCOL 12.7) and CORS on every response.
const BASE_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "Cross-Origin-Resource-Policy": "cross-origin",
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": EXPOSED,
};

export function respond(status: number, extra: HeaderMap | Headers = {}, body: BodyInit | Uint8Array | null = null): Response {
  // A plain object is handed to the runtime as is: no Headers object built in JS on the hot path.
  const headers = extra instanceof Headers ? { ...BASE_HEADERS, ...Object.fromEntries(extra) } : { ...BASE_HEADERS, ...extra };
  return new Response(status === 204 || status === 304 ? null : (body as BodyInit | null), { status, headers });
}

/**
 * The response without CORS headers: for the admin API and the Inspector page, which only
 * their own origin may read (no `Access-Control-Allow-Origin`, so no other page can).
 */
export function withoutCors(response: Response): Response {
  if (!response.headers.has("access-control-allow-origin")) return response;
  try {
    response.headers.delete("access-control-allow-origin");
    response.headers.delete("access-control-expose-headers");
    return response;
  } catch {
    // Headers of a response the runtime made are immutable: copy it without them.
    const headers = new Headers(response.headers);
    headers.delete("access-control-allow-origin");
    headers.delete("access-control-expose-headers");
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

export function errorResponse(err: unknown, method = "GET"): Response {
  // Every error that decides a response is mapped here, the guard's (401/403/429) too, so
  // here it is recorded for the request's access log line, once.
  noteRequestError(err);
  if (err instanceof SubscriptionError) {
    return respond(err.status, { "Content-Type": "application/json", "Cache-Control": "no-store" }, method === "HEAD" ? null : err.body);
  }
  if (err instanceof ProtocolError) {
    const body = method === "HEAD" ? null : err.message;
    return respond(err.status, { ...err.headers, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }, body);
  }
  if (isConnectionError(err)) {
    // Not the request's fault and not a bug: the database is unreachable or restarting
    // (logged once per outage by the store's availability gate, not once per request).
    return respond(
      503,
      { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", "Retry-After": "1" },
      "database unavailable, retry shortly",
    );
  }
  log.error({ err }, "unexpected error");
  return respond(500, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }, "internal server error");
}
