// The front door: request-target and header size limits, the loopback-only rule of a server
// without auth, authentication, authorization, rate limits and concurrency caps, in front of
// the whole app. It reads the route the request target matched in the one route table
// (http/routes.ts: the same route the handler runs), so every route is covered, including
// ones added later. Never logs or echoes a token.
import type { Config } from "../settings.ts";
import { bodyEnded, onBodyEnd } from "../http/body-end.ts";
import { errorResponse, withoutCors } from "../http/respond.ts";
import {
  Forbidden,
  HeadersTooLarge,
  MisdirectedRequest,
  TooManyRequests,
  Unauthorized,
  UriTooLong,
} from "../protocol/errors.ts";
import type { ConnInfo } from "../runtime/serve.ts";
import type { Check } from "../http/routes.ts";
import { targetOf } from "../http/target.ts";
import { JwtRejected, JwtVerifier } from "./jwt.ts";
import { Gate, principalShare, RateLimiter } from "./limits.ts";
import { allows } from "./permissions.ts";
import { type Principal, TokenFile } from "./tokens.ts";
import { setPrincipal } from "./principal.ts";
import { clientAddress } from "./client-address.ts";

export type GuardConfig = Pick<
  Config,
  | "HOST" | "AUTH" | "AUTH_TOKENS_FILE" | "AUTH_JWT_SECRET" | "AUTH_JWKS_URL" | "AUTH_JWT_PUBLIC_KEY"
  | "AUTH_JWT_ISSUER" | "AUTH_JWT_AUDIENCE" | "AUTH_JWT_CLOCK_SKEW_S" | "AUTH_JWT_MAX_LIFETIME_S" | "TRUST_PROXY" | "RATE_LIMIT_RPS"
  | "RATE_LIMIT_BURST" | "LIVE_READS_PER_PRINCIPAL" | "LIVE_READS_MAX" | "APPENDS_IN_FLIGHT_PER_PRINCIPAL" | "APPENDS_IN_FLIGHT_MAX"
  | "MAX_PATH_BYTES" | "MAX_URL_BYTES" | "MAX_HEADER_BYTES" | "SSE_MAX_LIFETIME_MS"
>;

type Inner = (request: Request) => Response | Promise<Response>;

export class Guard {
  private rate?: RateLimiter;
  private live: Gate;
  private appends: Gate;

  private constructor(
    private config: GuardConfig,
    private tokens: TokenFile | undefined,
    private jwt: JwtVerifier | undefined,
  ) {
    if (config.RATE_LIMIT_RPS > 0) {
      this.rate = new RateLimiter(config.RATE_LIMIT_RPS, config.RATE_LIMIT_BURST || Math.max(1, 2 * config.RATE_LIMIT_RPS));
    }
    const auth = Boolean(tokens || jwt);
    this.live = new Gate(principalShare(config.LIVE_READS_PER_PRINCIPAL, config.LIVE_READS_MAX, auth), config.LIVE_READS_MAX);
    this.appends = new Gate(principalShare(config.APPENDS_IN_FLIGHT_PER_PRINCIPAL, config.APPENDS_IN_FLIGHT_MAX, auth), config.APPENDS_IN_FLIGHT_MAX);
  }

  /** Reads the token file and JWT keys; refuses an open server on a non-loopback address. */
  static async create(config: GuardConfig): Promise<Guard> {
    let tokens: TokenFile | undefined;
    let jwt: JwtVerifier | undefined;
    try {
      tokens = config.AUTH_TOKENS_FILE ? new TokenFile(config.AUTH_TOKENS_FILE) : undefined;
      jwt = await JwtVerifier.create(config);
    } catch (err) {
      throw new RefusedToStart((err as Error).message);
    }
    if (config.AUTH === "none" && (tokens || jwt)) {
      throw new RefusedToStart("AUTH=none contradicts AUTH_TOKENS_FILE / AUTH_JWT_*: choose one");
    }
    if (!tokens && !jwt && config.AUTH !== "none" && !isLoopback(config.HOST)) {
      throw new RefusedToStart(
        `refusing to serve on ${config.HOST} without authentication: set AUTH_TOKENS_FILE or AUTH_JWT_SECRET / ` +
          "AUTH_JWKS_URL / AUTH_JWT_PUBLIC_KEY, bind HOST=127.0.0.1, or set AUTH=none if a proxy in front authenticates",
      );
    }
    return new Guard(config, tokens, jwt);
  }

  get authEnabled(): boolean {
    return Boolean(this.tokens || this.jwt);
  }

  get liveReads(): number {
    return this.live.total;
  }

  /** SIGHUP: re-read the token file. Throws (keeping the old keys) if the new file is bad. */
  reload(): string {
    if (!this.tokens) return "no AUTH_TOKENS_FILE to reload";
    return `${this.tokens.reload()} tokens loaded from ${this.tokens.file}`;
  }

  close(): void {
    this.rate?.close();
  }

  wrap(inner: Inner): (request: Request, conn?: ConnInfo) => Promise<Response> {
    return async (request, conn) => {
      const releases: (() => void)[] = [];
      let response: Response | undefined;
      try {
        await this.admit(request, conn, releases);
        response = await inner(request);
        if (this.authEnabled) response = keepOutOfSharedCaches(response);
      } catch (err) {
        response = errorResponse(err, request.method);
      } finally {
        this.settle(request, response, conn, releases);
      }
      // Refusals included: the admin API's answers are for its own origin only (issue 25.7).
      return corsAllowed(request) ? response : withoutCors(response);
    };
  }

  /** Resolves when the request may go on (pushing what it holds onto `releases`), or throws why not. */
  private async admit(request: Request, conn: ConnInfo | undefined, releases: (() => void)[]): Promise<void> {
    // Malformed targets (bad Host, lone "%", dot segments) are refused here with a 400.
    const target = targetOf(request);
    const route = target.route;
    if (target.path.length > this.config.MAX_PATH_BYTES) throw new UriTooLong(`request path is longer than ${this.config.MAX_PATH_BYTES} bytes`);
    if (target.path.length + target.query.length + 1 > this.config.MAX_URL_BYTES) {
      throw new UriTooLong(`request path and query are longer than ${this.config.MAX_URL_BYTES} bytes`);
    }
    let headerBytes = 0;
    request.headers.forEach((v, k) => (headerBytes += k.length + v.length + 4));
    if (headerBytes > this.config.MAX_HEADER_BYTES) throw new HeadersTooLarge(`request headers exceed ${this.config.MAX_HEADER_BYTES} bytes`);

    // Without auth, a browser page (or DNS rebinding) must not reach data by naming us:
    // only loopback names are answered (issue 25.7). Health checks may name the instance.
    if (!this.authEnabled && !route.anyHost && !isLoopbackHost(target.host)) {
      throw new MisdirectedRequest(
        `this server has no authentication and answers only loopback Host names (localhost, 127.x.x.x, [::1]), not ${JSON.stringify(target.host)}: ` +
          "configure AUTH_TOKENS_FILE or AUTH_JWT_* to serve other names",
      );
    }
    const op = route.access(target, request.headers);
    if (op.kind === "public") return;
    // The peer's address costs a system call on Bun: only worked out when something uses it.
    let known: string | undefined;
    const address = () => (known ??= `addr:${clientAddress(request, conn?.address, this.config.TRUST_PROXY)}`);
    if (op.kind === "self") return this.limitRate(address);
    let principal: Principal | undefined;
    if (this.authEnabled) {
      try {
        principal = await this.authenticate(request.headers.get("authorization"));
      } catch (err) {
        // Failed attempts count against the caller's address, so guessing keys is rate limited.
        if (err instanceof Unauthorized) this.limitRate(address);
        throw err;
      }
      setPrincipal(request, principal);
    }
    // Refused (403) requests count too: probing paths is not free.
    this.limitRate(principal ? principal.name : address);
    if (principal) for (const check of op.checks) this.authorize(principal, check);
    if (route.live) {
      const release = this.live.tryAcquire(principal?.name ?? address());
      if (typeof release === "string") {
        throw new TooManyRequests(
          release === "total" ? "too many live reads on this server" : "too many concurrent live reads for this client",
          1,
        );
      }
      releases.push(release);
      // Registered before the handler runs: an SSE body may end before the Response is returned.
      onBodyEnd(request, () => releases.splice(0).forEach((r) => r()));
      // Live reads are meant to sit quiet; the connection idle timeout is for everything else.
      conn?.holdOpen?.();
    }
    if (route.append) {
      // Without a per-principal cap, one key: the client address would cost a system call.
      const release = this.appends.tryAcquire(principal?.name ?? (this.appends.perKeyMax > 0 ? address() : ""));
      if (typeof release === "string") {
        throw new TooManyRequests(
          release === "total" ? "too many appends in flight on this server" : "too many appends in flight for this client",
          1,
        );
      }
      releases.push(release);
    }
  }

  private async authenticate(header: string | null): Promise<Principal> {
    const match = header ? /^Bearer +([^\s]+) *$/i.exec(header) : null;
    if (!match) {
      throw new Unauthorized(header ? "Authorization must be: Bearer <token>" : "missing bearer token (Authorization: Bearer <token>)", Boolean(header));
    }
    const token = match[1];
    const known = this.tokens?.lookup(token);
    if (known) return known;
    if (this.jwt && JwtVerifier.looksLikeJwt(token)) {
      try {
        return await this.jwt.verify(token);
      } catch (err) {
        if (err instanceof JwtRejected) throw new Unauthorized(err.message, true);
        throw err;
      }
    }
    throw new Unauthorized("unknown token", true);
  }

  private authorize(principal: Principal, check: Check): void {
    if (check.path !== null && allows(principal.grants, check.op, check.path)) return;
    const what = check.path === null ? "that fork source" : JSON.stringify(check.path);
    throw new Forbidden(`${principal.name} may not ${check.op} ${what}`);
  }

  private limitRate(key: string | (() => string)): void {
    if (!this.rate) return;
    const wait = this.rate.take(typeof key === "string" ? key : key());
    if (wait > 0) throw new TooManyRequests("request rate limit exceeded", wait);
  }

  /** Releases what a request held: at once, or when its streamed body ends (SSE). */
  private settle(request: Request, response: Response | undefined, conn: ConnInfo | undefined, releases: (() => void)[]): void {
    if (releases.length === 0) return;
    const streaming = response?.status === 200 && response.headers.get("content-type") === "text/event-stream";
    if (!streaming) {
      bodyEnded(request);
      for (const r of releases.splice(0)) r();
      return;
    }
    // Whichever comes first: the SSE pump ends (body-end hook), the client goes away, the
    // runtime reports the body delivered, or (a backstop, should all of those be missed)
    // the SSE lifetime passes.
    const end = () => bodyEnded(request);
    const timer = setTimeout(end, this.config.SSE_MAX_LIFETIME_MS + 10_000);
    releases.push(() => clearTimeout(timer));
    request.signal.addEventListener("abort", end, { once: true });
    conn?.completed?.then(end, end);
  }
}

/**
 * A response to an authenticated request must not be served by a shared cache to someone
 * else (PROTOCOL 12.2); `public` would allow exactly that (RFC 9111 3.5). Browsers may
 * still cache it for their own user.
 */
function keepOutOfSharedCaches(response: Response): Response {
  const cc = response.headers.get("cache-control");
  if (!cc?.startsWith("public")) return response;
  const value = `private${cc.slice("public".length)}`;
  try {
    response.headers.set("cache-control", value);
    return response;
  } catch {
    // Headers of a response the runtime made are immutable: copy it with the new value.
    const headers = new Headers(response.headers);
    headers.set("cache-control", value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/** A configuration the server will not run with; main.ts prints the message and exits. */
export class RefusedToStart extends Error {}

/** Whether the route lets browsers of other origins read its answers (a malformed target: yes). */
function corsAllowed(request: Request): boolean {
  try {
    return targetOf(request).route.cors;
  } catch {
    return true;
  }
}

/** A Host header's name (port and IPv6 brackets dropped) is a loopback name or address. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d*$/, "");
  return isLoopback(name);
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::ffff:127.0.0.1";
}
