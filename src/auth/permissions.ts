// Allow lists: which operations a principal may perform on which stream paths. Patterns
// are stream-root-relative globs matched segment by segment against the path exactly as
// sent (not percent-decoded), the same string the store uses as the stream's key.
import { type Static, Type } from "@sinclair/typebox";
import { globMatches } from "../protocol/glob.ts";

export const OPS = ["read", "append", "create", "delete", "admin"] as const;
export type Op = (typeof OPS)[number];

export const GrantSchema = Type.Object(
  {
    paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    ops: Type.Array(Type.Union(OPS.map((op) => Type.Literal(op))), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export const AllowSchema = Type.Array(GrantSchema);
export type Grant = Static<typeof GrantSchema>;

/** A grant with its patterns compiled once, when the token file or JWT is read. */
export interface CompiledGrant {
  ops: ReadonlySet<Op>;
  /** The patterns as written: subscriptions check their globs against them (subscriptions/scope.ts). */
  paths: readonly string[];
  match: (path: string) => boolean;
}

export function compileGrants(grants: Grant[]): CompiledGrant[] {
  return grants.map((g) => {
    const matchers = g.paths.map(compileGlob);
    return { ops: new Set(g.ops), paths: g.paths, match: (path) => matchers.some((m) => m(path)) };
  });
}

export function allows(grants: readonly CompiledGrant[], op: Op, path: string): boolean {
  return grants.some((g) => g.ops.has(op) && g.match(path));
}

/**
 * `*` matches exactly one non-empty segment, `**` any number of segments (none included,
 * so `orders/**` covers `orders` itself), anything else must equal the segment. Other
 * characters inside a segment are literal: `a*` is not a prefix match.
 */
export function compileGlob(pattern: string): (path: string) => boolean {
  // A leading slash in a pattern is forgiven; the path is split as is, so `a//b` or `a/`
  // (distinct streams in the store) do not pass for `a/b` or `a`.
  const want = pattern.replace(/^\/+/, "").split("/");
  return (path) => globMatches(want, path.split("/"));
}
