// Whether a subscription glob (glob.ts: `*` one segment, `**` zero or more, segments never
// empty) lies inside a set of permission globs (auth/permissions.ts: the same `*` and `**`,
// matched against the path as sent). Both are regular languages over path segments, so the
// question is decided exactly: walk both patterns' automata together over every segment
// that matters (each literal either side, plus one segment equal to none of them) and look
// for a path the subscription glob matches and no permission glob does.

/** A segment equal to no literal of either side; rendered as a free name in examples. */
const OTHER = "\u0000";
/** Reachable state pairs are few for real patterns; past this, the answer is "not covered". */
const MAX_STATES = 20_000;

type Positions = number[];

/** Positions reachable without consuming a segment: `**` may match none. */
function close(pattern: string[], from: Positions): Positions {
  const out = new Set(from);
  for (const i of from) for (let k = i; k < pattern.length && pattern[k] === "**"; k++) out.add(k + 1);
  return [...out].sort((a, b) => a - b);
}

function step(pattern: string[], from: Positions, segment: string): Positions {
  const next: number[] = [];
  for (const i of from) {
    if (i >= pattern.length) continue;
    const want = pattern[i];
    if (want === "**") next.push(i);
    // Every segment walked is non-empty (OTHER included), so `*` takes it.
    else if (want === "*" || want === segment) next.push(i + 1);
  }
  return close(pattern, next);
}

const accepts = (pattern: string[], at: Positions) => at.includes(pattern.length);

export interface Uncovered {
  /** A path the glob matches that no permission glob matches. */
  example: string;
}

/**
 * Undefined when every path `glob` can match is matched by one of `permissions`;
 * otherwise an example path it matches that none of them does.
 */
export function uncoveredPath(glob: string, permissions: readonly string[]): Uncovered | undefined {
  const g = glob.split("/").filter((s) => s.length > 0);
  // As compileGlob reads them: a leading slash forgiven, every other segment as written
  // (an empty one matches nothing a subscription can link).
  const ps = permissions.map((p) => p.replace(/^\/+/, "").split("/"));
  const literals = new Set([...g, ...ps.flat()].filter((s) => s !== "*" && s !== "**" && s !== ""));
  const alphabet = [...literals, OTHER];
  const free = freeName(literals);

  type State = { g: Positions; p: Positions[]; path: string[] };
  const start: State = { g: close(g, [0]), p: ps.map((p) => close(p, [0])), path: [] };
  const key = (s: State) => `${s.g.join(",")}|${s.p.map((x) => x.join(",")).join("|")}`;
  const seen = new Set([key(start)]);
  const queue = [start];
  while (queue.length > 0) {
    const s = queue.shift()!;
    for (const segment of alphabet) {
      const next: State = { g: step(g, s.g, segment), p: s.p.map((at, i) => step(ps[i], at, segment)), path: [...s.path, segment] };
      if (next.g.length === 0) continue;
      if (accepts(g, next.g) && !next.p.some((at, i) => accepts(ps[i], at))) {
        return { example: next.path.map((x) => (x === OTHER ? free : x)).join("/") };
      }
      const k = key(next);
      if (seen.has(k)) continue;
      if (seen.size >= MAX_STATES) return { example: `${glob} (too many combinations to check)` };
      seen.add(k);
      queue.push(next);
    }
  }
  return undefined;
}

/** A segment name that is none of the literals, for examples. */
function freeName(literals: Set<string>): string {
  let name = "x";
  while (literals.has(name)) name += "x";
  return name;
}
