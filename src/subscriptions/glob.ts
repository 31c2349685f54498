// Subscription globs over stream-root-relative paths (PROTOCOL 6.2): `*` matches exactly
// one path segment, `**` zero or more; every other segment matches itself. A glob becomes
// one anchored regular expression that both JavaScript and Postgres (POSIX ARE) accept,
// so the trigger check in the instance and backfill in SQL agree on what matches.
import { STREAM_PREFIX } from "./paths.ts";

const SPECIAL = /[\\^$.|?*+()[\]{}]/g;

/** The regex source over whole stream keys ("/v1/stream/<relative path>"). */
export function globRegexSource(pattern: string): string {
  const parts = pattern.split("/").filter((s) => s.length > 0);
  // Every segment is written with its leading slash, so `**` can vanish entirely.
  const body = parts
    .map((seg) => (seg === "**" ? "(/[^/]+)*" : seg === "*" ? "/[^/]+" : `/${seg.replace(SPECIAL, (c) => `\\${c}`)}`))
    .join("");
  return `^${STREAM_PREFIX.slice(0, -1).replace(SPECIAL, (c) => `\\${c}`)}${body}$`;
}

/** Matches stream keys against many globs at once (the per-append trigger check). */
export class GlobSet {
  private readonly combined?: RegExp;

  constructor(patterns: Iterable<string>) {
    const sources = [...new Set(patterns)].map((p) => `(?:${globRegexSource(p)})`);
    if (sources.length > 0) this.combined = new RegExp(sources.join("|"));
  }

  get empty(): boolean {
    return this.combined === undefined;
  }

  matches(streamKey: string): boolean {
    return this.combined?.test(streamKey) ?? false;
  }
}
