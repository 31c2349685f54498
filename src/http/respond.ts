// Response construction in one place: the headers every response carries, and the
// mapping from typed protocol errors to status codes.
import { type HeaderMap, ProtocolError } from "../protocol/errors.ts";

/** Headers a browser must be allowed to read (CORS). */
const EXPOSED = [
  "Stream-Next-Offset", "Stream-Cursor", "Stream-Up-To-Date", "Stream-Closed", "Stream-TTL", "Stream-Expires-At",
  "Stream-SSE-Data-Encoding", "ETag", "Location", "Content-Type", "Producer-Epoch", "Producer-Seq",
  "Producer-Expected-Seq", "Producer-Received-Seq", "Retry-After", "WWW-Authenticate",
].join(", ");

export const ALLOWED_REQUEST_HEADERS = [
  "Content-Type", "Stream-TTL", "Stream-Expires-At", "Stream-Seq", "Stream-Closed", "Stream-Forked-From",
  "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", "Producer-Id", "Producer-Epoch", "Producer-Seq",
  "If-None-Match", "Authorization", "Cache-Control",
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

export function errorResponse(err: unknown, method = "GET"): Response {
  if (err instanceof ProtocolError) {
    const body = method === "HEAD" ? null : err.message;
    return respond(err.status, { ...err.headers, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }, body);
  }
  if (isDatabaseUnavailable(err)) {
    // Not the request's fault and not a bug: the database is unreachable or restarting.
    console.error("database unavailable", (err as Error)?.message ?? err);
    return respond(
      503,
      { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", "Retry-After": "1" },
      "database unavailable, retry shortly",
    );
  }
  console.error("unexpected error", err);
  return respond(500, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }, "internal server error");
}

// postgres.js connection errors, socket errors, and SQLSTATE classes 08 (connection
// exception) and 57P (operator intervention: shutdown, crash recovery).
const UNAVAILABLE_CODES = new Set([
  "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT",
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH",
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    const code = typeof e.code === "string" ? e.code : "";
    if (UNAVAILABLE_CODES.has(code) || code.startsWith("08") || code.startsWith("57P")) return true;
    e = e.cause as typeof e;
  }
  return false;
}
