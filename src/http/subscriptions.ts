// Routes under the reserved control prefix /v1/stream/__ds (PROTOCOL 6, 7), answered before
// any stream operation. Unknown control paths are 404; errors are JSON with a code.
import { MethodNotAllowed, SubscriptionError } from "../protocol/errors.ts";
import { principalOf } from "../auth/principal.ts";
import { CONTROL_PREFIX } from "../protocol/paths.ts";
import type { Subscriptions } from "../subscriptions/service.ts";
import { readBody } from "./body.ts";
import { respond } from "./respond.ts";

const MAX_CONTROL_BODY = 1024 * 1024;
const JSON_HEADERS = { "Content-Type": "application/json", "Cache-Control": "no-store" };

export function isControlPath(pathname: string): boolean {
  return pathname === CONTROL_PREFIX || pathname.startsWith(`${CONTROL_PREFIX}/`);
}

const notFound = () => new SubscriptionError("NOT_FOUND", "no such control API under __ds");

function only(method: string, ...allowed: string[]): void {
  if (!allowed.includes(method)) {
    const e = new MethodNotAllowed(`method ${method} is not allowed here`);
    e.headers = { Allow: allowed.join(", ") };
    throw e;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new SubscriptionError("INVALID_REQUEST", "path segment is not valid URL encoding");
  }
}

export async function handleControl(subs: Subscriptions, request: Request, url: URL, maxBody: number): Promise<Response> {
  const method = request.method;
  // Who the guard let in (none when auth is off): a subscription covers only what they may read.
  const caller = principalOf(request);
  const rest = url.pathname.slice(CONTROL_PREFIX.length + 1).split("/");
  const body = () => readBody(request, Math.min(maxBody, MAX_CONTROL_BODY));
  const json = (status: number, value: unknown) => respond(status, JSON_HEADERS, method === "HEAD" ? null : JSON.stringify(value));

  if (rest.length === 1 && rest[0] === "jwks.json") {
    only(method, "GET", "HEAD");
    return respond(200, { "Content-Type": "application/jwk-set+json", "Cache-Control": "public, max-age=300" }, method === "HEAD" ? null : JSON.stringify(subs.jwks()));
  }
  if (rest[0] !== "subscriptions" || rest.length < 2 || rest[1] === "") throw notFound();
  const id = decodeSegment(rest[1]);
  const action = rest.slice(2);

  if (action.length === 0) {
    only(method, "GET", "HEAD", "PUT", "DELETE");
    if (method === "PUT") {
      const { created, body: view } = await subs.put(id, await body(), url.origin, caller);
      return json(created ? 201 : 200, view);
    }
    if (method === "DELETE") {
      await subs.delete(id);
      return respond(204);
    }
    return json(200, await subs.get(id, url.origin, caller));
  }
  if (action[0] === "streams") {
    if (action.length === 1) {
      only(method, "POST");
      await subs.addStreams(id, await body(), caller);
      return respond(204);
    }
    only(method, "DELETE");
    // The path is URL-encoded (%2F for slashes); raw slashes are accepted as well.
    await subs.removeStream(id, action.slice(1).join("/"));
    return respond(204);
  }
  if (action.length !== 1) throw notFound();
  // Callback, ack and release carry the subscription's own signed token (the guard lets them
  // through): it is checked before the body (up to 1 MiB) is read, so a caller without one
  // gets its 401 at once and costs no body read or JSON parse.
  const token = () => subs.verifyWakeToken(id, request.headers.get("authorization"));
  switch (action[0]) {
    case "callback": {
      only(method, "POST");
      const verified = await token();
      return json(200, await subs.ack("webhook", id, verified, await body()));
    }
    case "ack": {
      only(method, "POST");
      const verified = await token();
      return json(200, await subs.ack("pull-wake", id, verified, await body()));
    }
    case "release": {
      only(method, "POST");
      const verified = await token();
      await subs.release(id, verified, await body());
      return respond(204);
    }
    case "claim":
      only(method, "POST");
      return json(200, await subs.claim(id, await body(), caller));
    default:
      throw notFound();
  }
}
