// Signing keys and tokens on both backends: one key generated however many instances start
// at once, configured keys take over (with further published keys for rotation), and
// tokens are refused when forged, expired, or presented for another subscription.
import { describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, importJWK } from "jose";
import { SubscriptionError } from "../../src/protocol/errors.ts";
import { SubscriptionStore } from "../../src/store/subscriptions/index.ts";
import { KeyRing } from "../../src/subscriptions/keys.ts";
import { backends } from "../support/backends.ts";

const claims = { subscription: "s1", incarnation: 3, generation: 7, wakeId: "w_1" };

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof SubscriptionError ? e.code : `unexpected ${e}`;
  }
  return undefined;
}

for (const backend of backends) {
  describe(`signing keys on ${backend.name}`, () => {
    test("concurrent starts generate one key; tokens verify across instances and bind their claims", async () => {
      const db = await backend.open();
      try {
        const rings = await Promise.all([1, 2, 3].map(() => KeyRing.load(new SubscriptionStore(db, 0), { tokenTtlSeconds: 60 })));
        expect(new Set(rings.map((r) => r.activeKid)).size).toBe(1);
        expect(rings[0].activeKid).toMatch(/^ds_/);
        expect(rings[0].jwks().keys).toHaveLength(1);
        const token = await rings[0].issueToken(claims);
        expect(await rings[2].verifyToken(token, "s1")).toEqual(claims);
        expect(await codeOf(rings[1].verifyToken(token, "s2"))).toBe("TOKEN_INVALID");
        const [h, p, sig] = token.split(".");
        const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), gen: 8 })).toString("base64url")}.${sig}`;
        expect(await codeOf(rings[1].verifyToken(forged, "s1"))).toBe("TOKEN_INVALID");
        const expired = await (await KeyRing.load(new SubscriptionStore(db, 0), { tokenTtlSeconds: -5 })).issueToken(claims);
        expect(await codeOf(rings[1].verifyToken(expired, "s1"))).toBe("TOKEN_EXPIRED");
        // A webhook signature verifies with the published key.
        const header = await rings[1].signWebhook('{"a":1}', 1_700_000_000);
        const [, t, kid, s] = header.match(/^t=(\d+),kid=([^,]+),ed25519=([\w-]+)$/)!;
        const jwk = rings[0].jwks().keys.find((k) => k.kid === kid)!;
        const key = (await importJWK({ ...jwk }, "EdDSA")) as CryptoKey;
        expect(await crypto.subtle.verify("Ed25519", key, Buffer.from(s, "base64url"), new TextEncoder().encode(`${t}.{"a":1}`))).toBe(true);
      } finally {
        await db.close();
      }
    }, 60_000);

    test("a configured key signs; further published keys verify during a rotation", async () => {
      const db = await backend.open();
      try {
        const jwk = async () => exportJWK((await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true })).privateKey);
        const [oldKey, newKey] = [await jwk(), await jwk()];
        const publicOf = ({ d: _d, ...pub }: Record<string, unknown>) => pub;
        const old = await KeyRing.load(new SubscriptionStore(db, 0), { signingKey: JSON.stringify(oldKey), tokenTtlSeconds: 60 });
        const rotated = await KeyRing.load(new SubscriptionStore(db, 0), {
          signingKey: JSON.stringify(newKey),
          publishedKeys: JSON.stringify([publicOf(oldKey)]),
          tokenTtlSeconds: 60,
        });
        expect(rotated.activeKid).not.toBe(old.activeKid);
        expect(rotated.jwks().keys.map((k) => k.kid)).toEqual([rotated.activeKid, old.activeKid]);
        expect(await rotated.verifyToken(await old.issueToken(claims), "s1")).toEqual(claims);
        expect(await codeOf(old.verifyToken(await rotated.issueToken(claims), "s1"))).toBe("TOKEN_INVALID");
        await expect(KeyRing.load(new SubscriptionStore(db, 0), { signingKey: JSON.stringify(publicOf(newKey)), tokenTtlSeconds: 60 })).rejects.toThrow(/private/);
        await expect(KeyRing.load(new SubscriptionStore(db, 0), { signingKey: "{not json", tokenTtlSeconds: 60 })).rejects.toThrow(/JSON/);
      } finally {
        await db.close();
      }
    }, 60_000);
  });
}
