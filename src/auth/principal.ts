// Who made a request, for handlers behind the guard (the subscription layer scopes what a
// subscription covers by its creator's grants), and what the token file says about a
// principal now, so a subscription follows a narrowing reload (SIGHUP) without a request.
import type { CompiledGrant } from "./permissions.ts";
import type { Principal } from "./tokens.ts";

const byRequest = new WeakMap<Request, Principal>();

/** Set by the guard once the request is authenticated; absent when auth is off. */
export function setPrincipal(request: Request, principal: Principal): void {
  byRequest.set(request, principal);
}

export function principalOf(request: Request): Principal | undefined {
  return byRequest.get(request);
}

/** The grants of each name in each loaded token file (tokens sharing a name are one principal). */
const tokenFiles = new Map<string, ReadonlyMap<string, CompiledGrant[]>>();
/** Principals that came from a token file; every other principal came from a JWT. */
const fromTokenFile = new WeakSet<Principal>();

/** A token file was (re)loaded: what its names may do from now on. */
export function publishTokenFile(file: string, principals: Iterable<Principal>): void {
  const byName = new Map<string, CompiledGrant[]>();
  for (const p of principals) {
    fromTokenFile.add(p);
    byName.set(p.name, [...(byName.get(p.name) ?? []), ...p.grants]);
  }
  tokenFiles.set(file, byName);
}

export function isTokenFilePrincipal(principal: Principal): boolean {
  return fromTokenFile.has(principal);
}

/**
 * The grants `name` holds in `file` now: [] when the name is gone from it, undefined when
 * the file was never loaded in this process (auth off, or JWTs only).
 */
export function currentTokenGrants(file: string, name: string): CompiledGrant[] | undefined {
  const byName = tokenFiles.get(file);
  return byName && (byName.get(name) ?? []);
}
