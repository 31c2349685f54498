// Settings of authentication and limits; merged into the one schema in src/config.ts.
import { Type } from "@sinclair/typebox";

const Int = (min: number, dflt: number, description: string, max?: number) =>
  Type.Integer({ minimum: min, default: dflt, description, ...(max === undefined ? {} : { maximum: max }) });
const Str = (description: string) => Type.Optional(Type.String({ description }));
/** A per-principal cap whose default is derived (auth/limits.ts principalShare). */
const Share = (what: string, total: string) =>
  Type.Optional(Type.Integer({ minimum: 0, description: `${what} (0: no limit; unset: a quarter of ${total} when auth is on, else no limit)` }));

export const AuthConfigSchema = Type.Object({
  AUTH: Type.Optional(Type.Literal("none", { description: "`none`: serve without auth on a non-loopback HOST (a proxy in front authenticates)" })),
  AUTH_TOKENS_FILE: Str("JSON file of API keys (SHA-256 hashes) and their allow lists; re-read on SIGHUP"),
  AUTH_JWT_SECRET: Str("HS256 secret for JWTs (at least 32 bytes)"),
  AUTH_JWKS_URL: Str("JWKS URL for RS256/ES256/EdDSA JWTs"),
  AUTH_JWT_PUBLIC_KEY: Str("SPKI PEM public key for RS256/ES256/EdDSA JWTs"),
  AUTH_JWT_ISSUER: Str("required `iss` of JWTs"),
  AUTH_JWT_AUDIENCE: Str("required `aud` of JWTs"),
  AUTH_JWT_CLOCK_SKEW_S: Int(0, 30, "clock skew tolerated on exp/nbf, seconds"),
  AUTH_JWT_MAX_LIFETIME_S: Int(1, 86_400, "longest JWT lifetime accepted (exp - iat, and exp - now): a longer-lived token is refused with 401"),
  TRUST_PROXY: Int(0, 0, "proxies in front whose X-Forwarded-For is trusted for the client address (0: ignore the header)"),
  RATE_LIMIT_RPS: Int(0, 0, "requests a second per principal, on average (0 disables)"),
  RATE_LIMIT_BURST: Int(0, 0, "requests a principal may make at once above the rate (0: twice the rate)"),
  LIVE_READS_PER_PRINCIPAL: Share("concurrent live reads (SSE + long-poll) per principal", "LIVE_READS_MAX"),
  LIVE_READS_MAX: Int(0, 20_000, "concurrent live reads per instance (0: no limit)"),
  APPENDS_IN_FLIGHT_PER_PRINCIPAL: Share("appends (POST) being received or waiting to commit per principal", "APPENDS_IN_FLIGHT_MAX"),
  APPENDS_IN_FLIGHT_MAX: Int(0, 10_000, "appends (POST) being received or waiting to commit per instance (0: no limit)"),
  MAX_PATH_BYTES: Int(16, 1024, "longest request path; above it 414", 1024),
  MAX_URL_BYTES: Int(64, 8192, "longest path plus query string; above it 414"),
  MAX_HEADER_BYTES: Int(256, 16_384, "largest total of request header names and values; above it 431"),
  REQUEST_IDLE_TIMEOUT_S: Int(0, 30, "a connection silent this long is closed (Bun; live reads exempt) / a stalled body gets 408 (Deno); 0 disables", 255),
});
