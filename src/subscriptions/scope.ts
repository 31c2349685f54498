// What a subscription may cover: only streams its creator may read. Checked when it is
// created or its streams change (a clear 403), stored with it (its creator and their read
// globs), and applied again whenever a stream is named: answers, webhook bodies, wake
// events, and the links a wake may start from. Grants change after creation (a token file
// reloaded narrower, a JWT that expires), so the check at creation alone is not enough.
import { currentTokenGrants, isTokenFilePrincipal } from "../auth/principal.ts";
import { allows, type CompiledGrant, compileGrants } from "../auth/permissions.ts";
import type { Principal } from "../auth/tokens.ts";
import { Forbidden } from "../protocol/errors.ts";
import type { LinkState } from "../protocol/wake-fence.ts";
import { uncoveredPath } from "../protocol/glob-cover.ts";
import { relativeOf } from "../protocol/subscription-requests.ts";

/**
 * Stored with the subscription (migrations/0007). NULL for one created without auth: it
 * covers every stream it matches, as before. `source` says whether `principal` is a name in
 * AUTH_TOKENS_FILE (looked up again on every use) or a JWT subject (only what its token said).
 */
export interface SubscriptionScope {
  principal: string;
  source: "token" | "jwt";
  /** The creator's read globs when the subscription was created (or last re-confirmed by them). */
  read: string[];
}

export function scopeOf(principal: Principal): SubscriptionScope {
  const read = [...new Set(readGlobs(principal.grants))].sort();
  return { principal: principal.name, source: isTokenFilePrincipal(principal) ? "token" : "jwt", read };
}

/** Answers whether the subscription may name (and be woken by) a stream, by relative path. */
export type Readable = (path: string) => boolean;

/**
 * The subscription's scope now: its stored read globs, narrowed by what a token-file creator
 * holds in the token file as currently loaded (nothing, once their name is gone from it).
 * JWT subjects cannot be looked up: their stored globs stand until re-confirmed.
 */
export function scopeReader(scope: SubscriptionScope | null, tokensFile: string | undefined): Readable {
  if (scope === null) return () => true;
  const stored = compileGrants([{ paths: scope.read, ops: ["read"] }]);
  const current = scope.source === "token" && tokensFile ? currentTokenGrants(tokensFile, scope.principal) : undefined;
  return (path) => allows(stored, "read", path) && (current === undefined || allows(current, "read", path));
}

/** The scope's creator may still append to `path` (the wake stream); JWT creators were checked at creation. */
export function mayAppend(scope: SubscriptionScope | null, tokensFile: string | undefined, path: string): boolean {
  if (scope === null || scope.source !== "token" || !tokensFile) return true;
  const current = currentTokenGrants(tokensFile, scope.principal);
  return current === undefined || allows(current, "append", path);
}

/** What the caller of a request may see: their read grants (everything when auth is off). */
export function callerReader(caller: Principal | undefined): Readable {
  return caller ? (path) => allows(caller.grants, "read", path) : () => true;
}

export const both = (a: Readable, b: Readable): Readable => (path) => a(path) && b(path);

/** Links whose stream the reader may see. */
export function visibleLinks(links: LinkState[], readable: Readable): LinkState[] {
  return links.filter((l) => readable(relativeOf(l.key)));
}

/** Links outside the scope: removed, so they never count as pending work or get named. */
export function outOfScope(links: LinkState[], readable: Readable): string[] {
  return links.filter((l) => !readable(relativeOf(l.key))).map((l) => l.key);
}

/** Links inside the scope, and the keys of those outside it (none without a stored scope). */
export function splitByScope(links: LinkState[], scope: SubscriptionScope | null, tokensFile: string | undefined) {
  if (scope === null) return { inside: links, outside: [] as string[] };
  const readable = scopeReader(scope, tokensFile);
  return { inside: visibleLinks(links, readable), outside: outOfScope(links, readable) };
}

/**
 * A new subscription (or a re-confirmation) by `caller`: its glob must lie inside the
 * caller's read globs, each explicit stream be readable, and the wake stream appendable.
 */
export function checkCreate(
  caller: Principal,
  c: { pattern: string | null; streams: string[]; wakeStream: string | null },
): void {
  if (c.pattern !== null) {
    const reads = readGlobs(caller.grants);
    const gap = uncoveredPath(c.pattern, reads);
    if (gap) {
      throw new Forbidden(
        `${caller.name} may not subscribe to pattern ${JSON.stringify(c.pattern)}: it can match ${JSON.stringify(gap.example)}, ` +
          "which it may not read (a subscription's pattern must lie inside its creator's read permissions)",
      );
    }
  }
  checkStreams(caller, c.streams);
  if (c.wakeStream !== null && !allows(caller.grants, "append", c.wakeStream)) {
    throw new Forbidden(`${caller.name} may not append to the wake stream ${JSON.stringify(c.wakeStream)}`);
  }
}

/** Explicit streams (at creation or added later) must be readable by the caller and inside the subscription's scope. */
export function checkStreams(caller: Principal | undefined, streams: string[], scope: Readable = () => true): void {
  const mine = callerReader(caller);
  for (const s of streams) {
    if (!mine(s)) throw new Forbidden(`${caller!.name} may not read ${JSON.stringify(s)}, so no subscription of theirs may follow it`);
    if (!scope(s)) throw new Forbidden(`${JSON.stringify(s)} is outside this subscription's scope: its creator may not read it`);
  }
}

function readGlobs(grants: CompiledGrant[]): string[] {
  return grants.filter((g) => g.ops.has("read")).flatMap((g) => g.paths);
}

/** The stored JSON text back (null: created without auth). */
export function parseScope(text: string | null): SubscriptionScope | null {
  return text === null ? null : (JSON.parse(text) as SubscriptionScope);
}
