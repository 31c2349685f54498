// The request target, parsed once per request. The router, the guard, the metrics label and
// every handler read this one result, so a request cannot be authorised as one path and
// served as another (issue 25.4: Elysia routed on request.url from index 11 on while the
// guard read the parsed URL, so `Host: a:1` moved the route). The Host header only has to be
// a well-formed authority; it never decides where the path starts.
import { BadRequest, SubscriptionError } from "../protocol/errors.ts";
import { matchRoute, type Route } from "./routes.ts";

export interface Target {
  method: string;
  /** The path exactly as sent (and in normal form): streams are keyed by it, never decoded. */
  path: string;
  /** The query string without its "?" (raw). */
  query: string;
  /** `scheme://host[:port]` as the client addressed us (Location headers, subscription links). */
  origin: string;
  /** The Host header (lowercase), for the loopback check of a server without auth. */
  host: string;
  /** The one route this request takes (routes.ts). */
  route: Route;
  /** Query parameters, parsed on first use (the append path never needs them). */
  readonly params: URLSearchParams;
  /** The whole target as a URL, built from the parts above on first use. */
  readonly url: URL;
}

// RFC 3986 3.2.2/3.2.3: a reg-name or IP literal and an optional port. Anything else (a "/",
// "?", "#", "@", "\" or a space) could move where the runtime's URL puts the path.
const AUTHORITY = /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
// RFC 3986 2.1: "%" always starts a triplet. A lone one is not an encoding of anything.
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
// RFC 3986 pchar and "/": a path of these (and no dot segment) is already in the normal
// form a URL parser would give it, so it needs no parse to prove that.
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:\/|$)/i;

class ParsedTarget implements Target {
  private parsedParams?: URLSearchParams;
  private parsedUrl?: URL;
  route!: Route;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly query: string,
    readonly origin: string,
    readonly host: string,
  ) {}
  get params(): URLSearchParams {
    return (this.parsedParams ??= new URLSearchParams(this.query));
  }
  get url(): URL {
    return (this.parsedUrl ??= new URL(`${this.origin}${this.path}${this.query ? `?${this.query}` : ""}`));
  }
}

const parsed = new WeakMap<Request, Target | { error: unknown }>();

/** The request's target; parsed on the first call, the same object (or error) after. */
export function targetOf(request: Request): Target {
  let t = parsed.get(request);
  if (!t) {
    try {
      t = parseTarget(request.method, request.url, request.headers.get("host"));
    } catch (error) {
      t = { error };
    }
    parsed.set(request, t);
  }
  if ("error" in t) throw t.error;
  return t;
}

export function parseTarget(method: string, rawUrl: string, hostHeader: string | null): Target {
  // Bun builds request.url as scheme://Host + target (a bare target when Host is unusable);
  // Deno as scheme://Host + target, or the authority of an absolute-form target.
  if (hostHeader === null || hostHeader === "") throw new BadRequest("the Host header is required (RFC 9112 3.2)");
  if (!AUTHORITY.test(hostHeader)) throw new BadRequest("the Host header must be host[:port] (RFC 9110 7.2)");
  const scheme = rawUrl.indexOf("://");
  const pathAt = scheme < 0 ? -1 : rawUrl.indexOf("/", scheme + 3);
  if (pathAt < 0) throw new BadRequest("the request target must be a path (origin-form, RFC 9112 3.2.1)");
  const authority = rawUrl.slice(scheme + 3, pathAt);
  const host = hostHeader.toLowerCase();
  // An absolute-form target naming another authority than Host is not ours to interpret.
  if (authority.toLowerCase() !== host && authority.toLowerCase() !== host.replace(/:80$/, "")) {
    throw new BadRequest("the request target's authority differs from the Host header");
  }
  const q = rawUrl.indexOf("?", pathAt);
  const h = rawUrl.indexOf("#", pathAt);
  const pathEnd = Math.min(q < 0 ? rawUrl.length : q, h < 0 ? rawUrl.length : h);
  const path = rawUrl.slice(pathAt, pathEnd);
  const query = q < 0 || q > pathEnd ? "" : rawUrl.slice(q + 1, h < 0 || h < q ? rawUrl.length : h);
  if (BAD_PERCENT.test(path)) {
    throw badPath(path, 'the request path has a "%" not followed by two hex digits (RFC 3986 2.1): write a literal % as %25');
  }
  if (!inNormalForm(path)) {
    throw badPath(path, "the request path must be in normal form (no dot segments, non-ASCII percent-encoded)");
  }
  const origin = `${rawUrl.slice(0, scheme)}://${authority}`;
  const t = new ParsedTarget(method, path, query, origin, host);
  t.route = matchRoute(t);
  return t;
}

/** A 400 for a malformed path; under the subscription API in its error format (PROTOCOL 7: a JSON code). */
function badPath(path: string, message: string): Error {
  return path.startsWith("/v1/stream/__ds/") ? new SubscriptionError("INVALID_REQUEST", message) : new BadRequest(message);
}

/** Whether a URL parser would leave the path as it is (Deno hands over dot segments and raw bytes). */
function inNormalForm(path: string): boolean {
  if (PLAIN_PATH.test(path)) return !DOT_SEGMENT.test(path);
  try {
    return new URL(path, "http://h").pathname === path;
  } catch {
    return false;
  }
}
