// Token files and JWTs for tests: random tokens, their hashes written to a temporary file.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";

export interface TokenSpec {
  name: string;
  allow: { paths: string[]; ops: string[] }[];
}

export interface TokenFixture {
  file: string;
  /** name → the clear token, known only to the test. */
  tokens: Record<string, string>;
  /** Rewrites the file (for SIGHUP reload tests); returns the new clear tokens. */
  rewrite(specs: TokenSpec[] | string): Record<string, string>;
  cleanup(): void;
}

export function writeTokenFile(specs: TokenSpec[]): TokenFixture {
  const dir = mkdtempSync(join(tmpdir(), "ds-auth-"));
  const file = join(dir, "tokens.json");
  const write = (s: TokenSpec[] | string) => {
    if (typeof s === "string") {
      writeFileSync(file, s);
      return {};
    }
    const tokens: Record<string, string> = {};
    const entries = s.map((spec) => {
      // A name keeps its token across rewrites, so a reload changes grants, not secrets.
      tokens[spec.name] = fixture?.tokens[spec.name] ?? `tk_${randomBytes(18).toString("base64url")}`;
      return { name: spec.name, sha256: createHash("sha256").update(tokens[spec.name]).digest("hex"), allow: spec.allow };
    });
    writeFileSync(file, JSON.stringify({ tokens: entries }));
    return tokens;
  };
  let fixture: TokenFixture | undefined;
  fixture = {
    file,
    tokens: write(specs),
    rewrite: (s) => Object.assign(fixture!.tokens, write(s)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return fixture;
}

/** A fetch that adds the bearer token to every request that does not carry one. */
export function authedFetch(base: typeof fetch, token: string): typeof fetch {
  const wrapped = (input: RequestInfo | URL, init?: RequestInit) => {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
    return base(input, { ...init, headers });
  };
  return Object.assign(wrapped, base) as typeof fetch;
}

export const JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!";

export async function signJwt(
  claims: Record<string, unknown>,
  opts: { audience?: string; issuer?: string; expiresIn?: string | number; secret?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setSubject(String(claims.sub ?? "tester"));
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  jwt = jwt.setExpirationTime(opts.expiresIn ?? "10m");
  return jwt.sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}
