// Ed25519 keys through WebCrypto (jose on Bun and Deno): webhook signatures (PROTOCOL 7.1,
// 6.5) and the callback / claim tokens (12.9), both signed by the active key and checked
// against every published key, so any instance verifies what any other signed.
//
// Keys come from the environment (WEBHOOK_SIGNING_KEY: the private JWK that signs;
// WEBHOOK_PUBLISHED_KEYS: further public JWKs to publish during a rotation) or, when none is
// configured, from ds_signing_keys, where the first instance generates one.
//
// Signing is on every webhook's path (a callback token, then the body's signature): it
// uses node:crypto's synchronous Ed25519 sign on a key object imported once, and the
// token's protected header is encoded once. On Bun, about 26 µs a signature against 0.47 ms
// for jose's SignJWT plus 0.15 ms for a WebCrypto sign on the webhook path (each an
// asynchronous hop, under a load average of 8; issue 30.3).
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  jwtVerify,
} from "jose";
import { SubscriptionError } from "../protocol/errors.ts";
import type { SubscriptionStore } from "../store/subscriptions/index.ts";

export interface PublicJwk extends JWK {
  kid: string;
}

/** What a callback or claim token binds (PROTOCOL 7.3, 12.9). */
export interface TokenClaims {
  subscription: string;
  incarnation: number;
  generation: number;
  wakeId: string;
}

const publicPart = (jwk: JWK, kid: string): PublicJwk => ({ kty: "OKP", crv: "Ed25519", x: jwk.x, kid, use: "sig", alg: "EdDSA" });

async function kidOf(jwk: JWK): Promise<string> {
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new Error("signing keys must be Ed25519 JWKs (kty OKP, crv Ed25519)");
  return `ds_${await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: jwk.x })}`;
}

function parseJson(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${name} is not valid JSON`);
  }
}

export class KeyRing {
  private readonly verifyKeys: ReturnType<typeof createLocalJWKSet>;
  /** The callback tokens' protected header, base64url (the same for every token). */
  private readonly tokenHeader: string;

  private constructor(
    readonly activeKid: string,
    private readonly signingKey: KeyObject,
    private readonly published: PublicJwk[],
    private readonly tokenTtlSeconds: number,
  ) {
    this.verifyKeys = createLocalJWKSet({ keys: published });
    this.tokenHeader = b64url(JSON.stringify({ alg: "EdDSA", kid: activeKid, typ: "ds-wake+jwt" }));
  }

  static async load(
    store: Pick<SubscriptionStore, "ensureSigningKey">,
    opts: { signingKey?: string; publishedKeys?: string; tokenTtlSeconds: number },
  ): Promise<KeyRing> {
    let privateJwk: JWK;
    const published: PublicJwk[] = [];
    if (opts.signingKey) {
      privateJwk = parseJson("WEBHOOK_SIGNING_KEY", opts.signingKey) as JWK;
      if (typeof privateJwk.d !== "string") throw new Error("WEBHOOK_SIGNING_KEY must be a private Ed25519 JWK (with d)");
    } else {
      const stored = await store.ensureSigningKey(async () => {
        const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
        const pub = await exportJWK(pair.publicKey);
        const kid = await kidOf(pub);
        return { kid, publicJwk: publicPart(pub, kid) as unknown as Record<string, unknown>, privateJwk: (await exportJWK(pair.privateKey)) as Record<string, unknown> };
      });
      const active = stored.filter((k) => !k.retired).at(-1)!;
      privateJwk = active.privateJwk as JWK;
      for (const k of stored) if (k !== active) published.push(publicPart(k.publicJwk as JWK, k.kid));
    }
    const activeKid = await kidOf(privateJwk);
    const extra = opts.publishedKeys ? parseJson("WEBHOOK_PUBLISHED_KEYS", opts.publishedKeys) : [];
    if (!Array.isArray(extra)) throw new Error("WEBHOOK_PUBLISHED_KEYS must be a JSON array of public JWKs");
    for (const jwk of extra as JWK[]) published.push(publicPart(jwk, await kidOf(jwk)));
    const all = [publicPart(privateJwk, activeKid), ...published.filter((k) => k.kid !== activeKid)];
    // Checked by WebCrypto's import first (its errors name a bad JWK), then kept as a key object.
    await importJWK({ ...privateJwk, alg: "EdDSA" }, "EdDSA");
    const key = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", x: privateJwk.x, d: privateJwk.d }, format: "jwk" });
    return new KeyRing(activeKid, key, all, opts.tokenTtlSeconds);
  }

  /** The JWK Set served at __ds/jwks.json: the active key first. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.published.map((k) => ({ ...k })) };
  }

  /** `Webhook-Signature` for a body: Ed25519 over "<t>.<body>" (PROTOCOL 7.1). */
  signWebhook(body: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
    const signature = sign(null, Buffer.from(`${nowSeconds}.${body}`), this.signingKey);
    return `t=${nowSeconds},kid=${this.activeKid},ed25519=${signature.toString("base64url")}`;
  }

  /** A compact JWS (EdDSA): the claims verifyToken checks, as jose's jwtVerify reads them. */
  issueToken(c: TokenClaims): string {
    const iat = Math.floor(Date.now() / 1000);
    const payload = b64url(JSON.stringify({ inc: c.incarnation, gen: c.generation, wid: c.wakeId, sub: c.subscription, iat, exp: iat + this.tokenTtlSeconds }));
    const input = `${this.tokenHeader}.${payload}`;
    return `${input}.${sign(null, Buffer.from(input), this.signingKey).toString("base64url")}`;
  }

  /** Checks signature, expiry and subscription; the caller checks the rest against the row. */
  async verifyToken(token: string, subscription: string): Promise<TokenClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.verifyKeys, { algorithms: ["EdDSA"], typ: "ds-wake+jwt", subject: subscription }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new SubscriptionError("TOKEN_EXPIRED", "token has expired");
      throw new SubscriptionError("TOKEN_INVALID", "token is not valid for this subscription");
    }
    const { inc, gen, wid } = payload;
    if (!Number.isSafeInteger(inc) || !Number.isSafeInteger(gen) || typeof wid !== "string") {
      throw new SubscriptionError("TOKEN_INVALID", "token is not valid for this subscription");
    }
    return { subscription, incarnation: inc as number, generation: gen as number, wakeId: wid };
  }
}

const b64url = (text: string) => Buffer.from(text).toString("base64url");
