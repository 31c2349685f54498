// Globs over stream-root-relative paths (PROTOCOL 6.2): `*` matches exactly one path
// segment, `**` zero or more; every other segment matches itself. One matcher (globMatches)
// serves subscriptions, retention rules and the allow lists of auth/permissions.ts. A
// subscription glob also becomes one anchored regular expression that both JavaScript and
// Postgres (POSIX ARE) accept, so the trigger check in the instance and backfill in SQL agree
// on what matches.
import { STREAM_PREFIX } from "./paths.ts";

const SPECIAL = /[\\^$.|?*+()[\]{}]/g;
const MAX_SEGMENTS = 32;
const MAX_DEEP = 4;

/**
 * Normalises a glob and bounds its cost: runs of `**` collapse into one (same meaning), and
 * at most MAX_DEEP `**` and MAX_SEGMENTS segments are allowed, since every append on every
 * instance is tested against every glob and nested `**` would backtrack exponentially.
 * Returns undefined for a glob outside those bounds.
 */
export function normalizeGlob(pattern: string): string | undefined {
  const parts = pattern.split("/").filter((s, i, all) => s.length > 0 && !(s === "**" && all[i - 1] === "**"));
  if (parts.length > MAX_SEGMENTS || parts.filter((s) => s === "**").length > MAX_DEEP) return undefined;
  return parts.join("/");
}

/** The regex source over whole stream keys ("/v1/stream/<relative path>"). */
export function globRegexSource(pattern: string): string {
  const parts = pattern.split("/").filter((s) => s.length > 0);
  // Every segment is written with its leading slash, so `**` can vanish entirely.
  const body = parts
    .map((seg) => (seg === "**" ? "(/[^/]+)*" : seg === "*" ? "/[^/]+" : `/${seg.replace(SPECIAL, (c) => `\\${c}`)}`))
    .join("");
  return `^${STREAM_PREFIX.slice(0, -1).replace(SPECIAL, (c) => `\\${c}`)}${body}$`;
}

/**
 * Matches one relative path (split into segments) against one glob (split likewise) in
 * O(glob x path) steps: no backtracking, whatever the glob, since every append on every
 * instance runs this against every glob. The one matcher of both glob dialects (this one
 * and auth/permissions.ts's allow lists): `*` takes exactly one non-empty segment, `**` any
 * number of segments (empty ones included), any other segment must equal the path's.
 */
export function globMatches(glob: string[], path: string[]): boolean {
  // reach[j]: the glob prefix consumed so far can end right before path segment j
  let reach = new Array<boolean>(path.length + 1).fill(false);
  reach[0] = true;
  for (const seg of glob) {
    const next = new Array<boolean>(path.length + 1).fill(false);
    if (seg === "**") {
      for (let j = 0, any = false; j <= path.length; j++) next[j] = any = any || reach[j];
    } else {
      for (let j = 0; j < path.length; j++) if (reach[j] && (seg === "*" ? path[j] !== "" : seg === path[j])) next[j + 1] = true;
    }
    reach = next;
  }
  return reach[path.length];
}

const segments = (p: string) => p.split("/").filter((s) => s.length > 0);

/**
 * Matches stream keys against many globs (the per-append trigger check). Globs are indexed
 * by their first segment when it is literal, so a path is only tested against the globs
 * that could match it and those that start with a wildcard.
 */
export class GlobSet {
  private readonly byFirst = new Map<string, [string, string[]][]>();
  private readonly wild: [string, string[]][] = [];
  private readonly size: number;

  constructor(patterns: Iterable<string>) {
    const globs = [...new Set(patterns)].map((p): [string, string[]] => [p, segments(p)]);
    this.size = globs.length;
    for (const g of globs) {
      const first = g[1][0];
      if (g[1].length === 0 || first === "*" || first === "**") this.wild.push(g);
      else this.byFirst.set(first, [...(this.byFirst.get(first) ?? []), g]);
    }
  }

  get empty(): boolean {
    return this.size === 0;
  }

  matches(streamKey: string): boolean {
    const path = this.relative(streamKey);
    if (!path) return false;
    const candidates = this.byFirst.get(path[0]);
    return (candidates?.some(([, g]) => globMatches(g, path)) ?? false) || this.wild.some(([, g]) => globMatches(g, path));
  }

  /** The patterns (as given) that match a stream key. */
  matching(streamKey: string): string[] {
    const path = this.relative(streamKey);
    if (!path) return [];
    return [...(this.byFirst.get(path[0]) ?? []), ...this.wild].filter(([, g]) => globMatches(g, path)).map(([p]) => p);
  }

  private relative(streamKey: string): string[] | undefined {
    if (this.size === 0 || !streamKey.startsWith(STREAM_PREFIX)) return undefined;
    // Empty segments ("a//b", a trailing slash) never match, as in the SQL regex.
    const path = streamKey.slice(STREAM_PREFIX.length).split("/");
    return path.includes("") ? undefined : path;
  }
}
