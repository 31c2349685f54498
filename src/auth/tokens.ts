// API keys from AUTH_TOKENS_FILE. The file holds SHA-256 hashes only: a leaked file (or
// backup) does not leak usable keys. Re-read on SIGHUP; a bad file keeps the previous one.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { AllowSchema, type CompiledGrant, compileGrants } from "./permissions.ts";
import { publishTokenFile } from "./principal.ts";

const TokenFileSchema = Type.Object({
  tokens: Type.Array(
    Type.Object({
      name: Type.String({ minLength: 1 }),
      sha256: Type.String({ pattern: "^[0-9a-fA-F]{64}$" }),
      allow: AllowSchema,
    }),
  ),
});

export interface Principal {
  /** Token name or JWT subject: what limits and logs key on. Never the token itself. */
  name: string;
  grants: CompiledGrant[];
}

export function sha256Hex(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class TokenFile {
  private byHash = new Map<string, Principal>();

  constructor(readonly file: string) {
    this.byHash = parse(file);
    publishTokenFile(file, this.byHash.values());
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Re-reads the file; throws (keeping the loaded keys) when it is unreadable or invalid. */
  reload(): number {
    this.byHash = parse(this.file);
    publishTokenFile(this.file, this.byHash.values());
    return this.byHash.size;
  }

  lookup(token: string): Principal | undefined {
    // A map keyed by the hash: timing reveals at most something about a hash of a guess.
    return this.byHash.get(sha256Hex(token));
  }
}

function parse(file: string): Map<string, Principal> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`AUTH_TOKENS_FILE ${file}: ${(err as Error).message}`);
  }
  const errors = [...Value.Errors(TokenFileSchema, data)];
  if (errors.length > 0) {
    const e = errors[0];
    throw new Error(`AUTH_TOKENS_FILE ${file}: ${e.path || "/"}: ${e.message}`);
  }
  const out = new Map<string, Principal>();
  for (const t of (data as { tokens: { name: string; sha256: string; allow: [] }[] }).tokens) {
    const hash = t.sha256.toLowerCase();
    if (out.has(hash)) throw new Error(`AUTH_TOKENS_FILE ${file}: token "${t.name}" repeats another token's hash`);
    out.set(hash, { name: t.name, grants: compileGrants(t.allow) });
  }
  return out;
}
