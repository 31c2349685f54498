// Ed25519 keys through WebCrypto (jose on Bun and Deno): webhook signatures (PROTOCOL 7.1,
// 6.5) and the callback / claim tokens (12.9), both signed by the active key and checked
// against every published key, so any instance verifies what any other signed.
//
// Keys come from the environment (WEBHOOK_SIGNING_KEY: the private JWK that signs;
// WEBHOOK_PUBLISHED_KEYS: further public JWKs to publish during a rotation) or, when none is
// configured, from ds_signing_keys, where the first instance generates one.
import { Buffer } from "node:buffer";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
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

  private constructor(
    readonly activeKid: string,
    private readonly signingKey: CryptoKey,
    private readonly published: PublicJwk[],
    private readonly tokenTtlSeconds: number,
  ) {
    this.verifyKeys = createLocalJWKSet({ keys: published });
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
    const key = (await importJWK({ ...privateJwk, alg: "EdDSA" }, "EdDSA")) as CryptoKey;
    return new KeyRing(activeKid, key, all, opts.tokenTtlSeconds);
  }

  /** The JWK Set served at __ds/jwks.json: the active key first. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.published.map((k) => ({ ...k })) };
  }

  /** `Webhook-Signature` for a body: Ed25519 over "<t>.<body>" (PROTOCOL 7.1). */
  async signWebhook(body: string, nowSeconds = Math.floor(Date.now() / 1000)): Promise<string> {
    const signature = await crypto.subtle.sign("Ed25519", this.signingKey, new TextEncoder().encode(`${nowSeconds}.${body}`));
    return `t=${nowSeconds},kid=${this.activeKid},ed25519=${Buffer.from(signature).toString("base64url")}`;
  }

  issueToken(c: TokenClaims): Promise<string> {
    return new SignJWT({ inc: c.incarnation, gen: c.generation, wid: c.wakeId })
      .setProtectedHeader({ alg: "EdDSA", kid: this.activeKid, typ: "ds-wake+jwt" })
      .setSubject(c.subscription)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + this.tokenTtlSeconds)
      .sign(this.signingKey);
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
