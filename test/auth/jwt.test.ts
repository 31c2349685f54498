// JWT verification with each key source: HS256 secret, SPKI public key (ES256, EdDSA, RS256)
// and a JWKS URL served locally; claims checks and the ds_allow claim's shape.
import { afterAll, describe, expect, test } from "bun:test";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { loadConfig } from "../../src/settings.ts";
import { JwtRejected, JwtVerifier, KeysUnavailable } from "../../src/auth/jwt.ts";
import { allows } from "../../src/auth/permissions.ts";

const ALLOW = [{ paths: ["billing/*"], ops: ["read", "append"] }];
const verifier = async (env: Record<string, string>) => (await JwtVerifier.create(loadConfig({ DATA_DIR: "memory://", ...env })))!;
const sign = (key: CryptoKey | Uint8Array, alg: string, claims: Record<string, unknown> = { ds_allow: ALLOW }, kid?: string) =>
  new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setSubject("svc").setIssuer("iss-1").setAudience("aud-1").setExpirationTime("5m").sign(key);

const servers: { stop(force?: boolean): unknown }[] = [];
afterAll(() => servers.forEach((s) => s.stop(true)));

describe("JWT key sources", () => {
  for (const alg of ["ES256", "EdDSA", "RS256"]) {
    test(`${alg} with AUTH_JWT_PUBLIC_KEY`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      const v = await verifier({ AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey), AUTH_JWT_ISSUER: "iss-1", AUTH_JWT_AUDIENCE: "aud-1" });
      const p = await v.verify(await sign(privateKey, alg));
      expect(p.name).toBe("jwt:svc");
      expect(allows(p.grants, "append", "billing/jan")).toBe(true);
      expect(allows(p.grants, "delete", "billing/jan")).toBe(false);
      expect(allows(p.grants, "read", "billing/jan/x")).toBe(false);
      // Signed by another key of the same kind: refused.
      const other = await generateKeyPair(alg, { extractable: true });
      await expect(v.verify(await sign(other.privateKey, alg))).rejects.toThrow(JwtRejected);
    });
  }

  test("JWKS URL: key chosen by kid", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ keys: [jwk] }) });
    servers.push(server);
    const v = await verifier({ AUTH_JWKS_URL: `http://127.0.0.1:${server.port}/jwks.json` });
    expect((await v.verify(await sign(privateKey, "ES256", { ds_allow: ALLOW }, "k1"))).name).toBe("jwt:svc");
    await expect(v.verify(await sign(privateKey, "ES256", { ds_allow: ALLOW }, "unknown"))).rejects.toThrow(/no key matches/);
  });

  test("HS256: issuer, audience, expiry with skew, nbf, algorithm and claim shape", async () => {
    const secret = new TextEncoder().encode("k".repeat(40));
    const v = await verifier({ AUTH_JWT_SECRET: "k".repeat(40), AUTH_JWT_ISSUER: "iss-1", AUTH_JWT_AUDIENCE: "aud-1", AUTH_JWT_CLOCK_SKEW_S: "30" });
    const now = Math.floor(Date.now() / 1000);
    const unexpiring = () => new SignJWT({ ds_allow: ALLOW }).setProtectedHeader({ alg: "HS256" }).setIssuer("iss-1").setAudience("aud-1");
    const base = () => unexpiring().setExpirationTime(now + 60);
    expect((await v.verify(await base().setExpirationTime(now + 60).sign(secret))).grants.length).toBe(1);
    // Expired 10 s ago: inside the 30 s skew. Expired 60 s ago: refused.
    await v.verify(await base().setExpirationTime(now - 10).sign(secret));
    await expect(v.verify(await base().setExpirationTime(now - 60).sign(secret))).rejects.toThrow(/expired/);
    await expect(v.verify(await base().setNotBefore(now + 120).sign(secret))).rejects.toThrow(/nbf/);
    await expect(v.verify(await base().setIssuer("other").sign(secret))).rejects.toThrow(/iss/);
    await expect(v.verify(await base().setAudience("other").sign(secret))).rejects.toThrow(/aud/);
    const bad = await new SignJWT({ ds_allow: [{ paths: ["a"], ops: ["fly"] }] }).setProtectedHeader({ alg: "HS256" }).setIssuer("iss-1").setAudience("aud-1").setExpirationTime("1m").sign(secret);
    await expect(v.verify(bad)).rejects.toThrow(/ds_allow claim is malformed/);
    // No ds_allow: authenticated, allowed nothing.
    expect((await v.verify(await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer("iss-1").setAudience("aud-1").setExpirationTime("1m").sign(secret))).grants).toEqual([]);
    // No exp: refused, it would never expire.
    await expect(v.verify(await unexpiring().sign(secret))).rejects.toThrow(/exp missing/);
    // An unsigned token is never accepted.
    const claims = JSON.stringify({ iss: "iss-1", aud: "aud-1", exp: now + 60 });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(claims).toString("base64url")}.`;
    await expect(v.verify(unsigned)).rejects.toThrow(JwtRejected);
  });

  test("AUTH_JWT_MAX_LIFETIME_S: longer-lived or absurd tokens are refused", async () => {
    const secret = new TextEncoder().encode("k".repeat(40));
    const v = await verifier({ AUTH_JWT_SECRET: "k".repeat(40), AUTH_JWT_MAX_LIFETIME_S: "3600" });
    const now = Math.floor(Date.now() / 1000);
    const token = (claims: Record<string, unknown>) => new SignJWT({ ds_allow: ALLOW, ...claims }).setProtectedHeader({ alg: "HS256" }).sign(secret);
    // Within the limit, with and without iat.
    expect((await v.verify(await token({ iat: now, exp: now + 3600 }))).grants.length).toBe(1);
    await v.verify(await token({ exp: now + 3000 }));
    // exp=1e300 (issue 25): refused, with and without iat.
    await expect(v.verify(await token({ exp: 1e300 }))).rejects.toThrow(/lifetime exceeds AUTH_JWT_MAX_LIFETIME_S/);
    await expect(v.verify(await token({ iat: now, exp: 1e300 }))).rejects.toThrow(/lifetime exceeds/);
    // Issued a week ago, a minute left: its claimed lifetime is a week, refused.
    await expect(v.verify(await token({ iat: now - 7 * 86_400, exp: now + 60 }))).rejects.toThrow(/lifetime exceeds/);
    // A future iat cannot stretch the window: exp - now still counts.
    await expect(v.verify(await token({ iat: now + 86_400, exp: now + 86_400 + 60 }))).rejects.toThrow(/lifetime exceeds/);
    // Not a number at all: jose's claim check.
    await expect(v.verify(await token({ exp: "never" }))).rejects.toThrow(JwtRejected);
    // The default is a day.
    const byDefault = await verifier({ AUTH_JWT_SECRET: "k".repeat(40) });
    await byDefault.verify(await token({ iat: now, exp: now + 86_400 }));
    await expect(byDefault.verify(await token({ iat: now, exp: now + 86_401 }))).rejects.toThrow(/86400 s/);
  });

  test("an unreachable JWKS URL is a 503 for the client, not a 401", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("down", { status: 500 }) });
    servers.push(server);
    const v = await verifier({ AUTH_JWKS_URL: `http://127.0.0.1:${server.port}/jwks.json` });
    const err = await v.verify(await sign(privateKey, "ES256", { ds_allow: ALLOW }, "k1")).catch((e) => e);
    expect(err).toBeInstanceOf(KeysUnavailable);
    expect(err.status).toBe(503);
  });

  test("only one key source at a time", async () => {
    await expect(JwtVerifier.create(loadConfig({ AUTH_JWT_SECRET: "k".repeat(40), AUTH_JWKS_URL: "http://127.0.0.1:1/x" }))).rejects.toThrow(/only one/);
    await expect(JwtVerifier.create(loadConfig({ AUTH_JWT_PUBLIC_KEY: "not a key" }))).rejects.toThrow(/SPKI/);
  });
});
