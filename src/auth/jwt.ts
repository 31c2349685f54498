// JWTs from an identity provider, verified with jose: HS256 with a shared secret, or
// RS256/ES256/EdDSA with a public key (PEM) or a JWKS URL. The allow list travels in the
// `ds_allow` claim, in the same shape as a token file entry's `allow`.
import { createRemoteJWKSet, errors, importSPKI, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from "jose";
import { Value } from "@sinclair/typebox/value";
import type { Config } from "../settings.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { AllowSchema, compileGrants } from "./permissions.ts";
import type { Principal } from "./tokens.ts";

export const ALLOW_CLAIM = "ds_allow";
const ASYMMETRIC = ["RS256", "ES256", "EdDSA"];

type JwtConfig = Pick<
  Config,
  "AUTH_JWT_SECRET" | "AUTH_JWKS_URL" | "AUTH_JWT_PUBLIC_KEY" | "AUTH_JWT_ISSUER" | "AUTH_JWT_AUDIENCE" | "AUTH_JWT_CLOCK_SKEW_S" | "AUTH_JWT_MAX_LIFETIME_S"
>;

/** Why a presented JWT was refused: the text goes to the client, never the token. */
export class JwtRejected extends Error {}

/** 503: AUTH_JWKS_URL did not answer; the client may retry with the same token. */
export class KeysUnavailable extends ProtocolError {
  readonly status = 503;
  constructor(message: string) {
    super(message);
    this.headers = { "Retry-After": "5" };
  }
}

export class JwtVerifier {
  /** Keys come from AUTH_JWKS_URL, so verification can fail for want of them. */
  private readonly remote: boolean;

  private constructor(
    private key: Uint8Array | CryptoKey | JWTVerifyGetKey,
    private algorithms: string[],
    private config: JwtConfig,
  ) {
    this.remote = typeof key === "function";
  }

  static async create(config: JwtConfig): Promise<JwtVerifier | undefined> {
    const sources = [config.AUTH_JWT_SECRET, config.AUTH_JWKS_URL, config.AUTH_JWT_PUBLIC_KEY].filter(Boolean).length;
    if (sources === 0) return undefined;
    if (sources > 1) throw new Error("set only one of AUTH_JWT_SECRET, AUTH_JWKS_URL, AUTH_JWT_PUBLIC_KEY");
    if (config.AUTH_JWT_SECRET) {
      // RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
      if (new TextEncoder().encode(config.AUTH_JWT_SECRET).byteLength < 32) throw new Error("AUTH_JWT_SECRET must be at least 32 bytes");
      return new JwtVerifier(new TextEncoder().encode(config.AUTH_JWT_SECRET), ["HS256"], config);
    }
    if (config.AUTH_JWKS_URL) return new JwtVerifier(createRemoteJWKSet(new URL(config.AUTH_JWKS_URL)), ASYMMETRIC, config);
    const pem = config.AUTH_JWT_PUBLIC_KEY!.replace(/\\n/g, "\n");
    for (const alg of ASYMMETRIC) {
      try {
        return new JwtVerifier(await importSPKI(pem, alg), [alg], config);
      } catch {
        // not a key for this algorithm; try the next
      }
    }
    throw new Error("AUTH_JWT_PUBLIC_KEY is not an SPKI PEM public key for RS256, ES256 or EdDSA");
  }

  /** Whether a bearer token looks like a JWT (three base64url parts) rather than an API key. */
  static looksLikeJwt(token: string): boolean {
    return /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        issuer: this.config.AUTH_JWT_ISSUER || undefined,
        audience: this.config.AUTH_JWT_AUDIENCE || undefined,
        clockTolerance: this.config.AUTH_JWT_CLOCK_SKEW_S,
        // A token without an expiry would be valid forever once leaked.
        requiredClaims: ["exp"],
      }));
    } catch (err) {
      // The key set could not be fetched: the server's problem, not a bad token (no 401).
      if (this.remote && (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError) || err.code === "ERR_JOSE_GENERIC")) {
        throw new KeysUnavailable("the JWT key set cannot be fetched, retry shortly");
      }
      throw new JwtRejected(describe(err));
    }
    this.checkLifetime(payload);
    const allow = payload[ALLOW_CLAIM] ?? [];
    if (!Value.Check(AllowSchema, allow)) throw new JwtRejected(`the ${ALLOW_CLAIM} claim is malformed`);
    return { name: `jwt:${payload.sub ?? "anonymous"}`, grants: compileGrants(allow) };
  }

  /**
   * A signed token with exp=1e300 would be a credential for ever once leaked: the lifetime it
   * claims (exp - iat) and the lifetime it has left (exp - now) must both fit
   * AUTH_JWT_MAX_LIFETIME_S (plus the clock skew, which exp already enjoys).
   */
  private checkLifetime(payload: JWTPayload): void {
    const max = this.config.AUTH_JWT_MAX_LIFETIME_S;
    const exp = payload.exp!;
    const now = Date.now() / 1000;
    const claimed = typeof payload.iat === "number" ? exp - payload.iat : 0;
    if (!Number.isFinite(exp) || claimed > max || exp - now > max + this.config.AUTH_JWT_CLOCK_SKEW_S) {
      throw new JwtRejected(`token lifetime exceeds AUTH_JWT_MAX_LIFETIME_S (${max} s)`);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "token has expired";
  if (err instanceof errors.JWTClaimValidationFailed) return `token claim check failed: ${err.claim} ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (err instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not accepted";
  if (err instanceof errors.JWKSNoMatchingKey) return "no key matches the token";
  if (err instanceof errors.JOSEError) return `token is invalid (${err.code})`;
  return "token is invalid";
}
