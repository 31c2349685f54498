// Operator retention rules (RETENTION_RULES_FILE): policies by path glob, the same globs as
// subscriptions (protocol/glob.ts: `*` one segment, `**` any number), so the pass in
// JS and the adoption query in SQL agree on what a rule covers. Format: notes/retention.md.
import { readFileSync } from "node:fs";
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { NO_POLICY, type RetentionPolicy, stricter } from "../protocol/retention.ts";
import { GlobSet, globRegexSource, normalizeGlob } from "../protocol/glob.ts";

const RuleSchema = Type.Object(
  {
    match: Type.String({ minLength: 1, description: "stream-root-relative glob, e.g. logs/**" }),
    maxAgeSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
    maxBytes: Type.Optional(Type.Integer({ minimum: 1 })),
    compaction: Type.Optional(Type.Literal("state")),
  },
  { additionalProperties: false },
);
const RulesFileSchema = Type.Object({ rules: Type.Array(RuleSchema) }, { additionalProperties: false });
export type RetentionRule = Static<typeof RuleSchema>;

export class RetentionRules {
  private readonly globs: GlobSet;
  private readonly byGlob = new Map<string, RetentionPolicy>();
  /** One anchored regex per rule, over stream keys, for Postgres (store/streams/retention.ts). */
  readonly regexes: string[];

  constructor(rules: RetentionRule[]) {
    for (const r of rules) {
      const glob = normalizeGlob(r.match.replace(/^\/+/, ""));
      if (glob === undefined) throw new Error(`retention rule ${JSON.stringify(r.match)}: glob is too long or has too many **`);
      const policy = { maxAgeSeconds: r.maxAgeSeconds ?? null, maxBytes: r.maxBytes ?? null, compaction: r.compaction ?? null };
      this.byGlob.set(glob, stricter(this.byGlob.get(glob) ?? NO_POLICY, policy));
    }
    this.globs = new GlobSet(this.byGlob.keys());
    this.regexes = [...this.byGlob.keys()].map(globRegexSource);
  }

  get empty(): boolean {
    return this.byGlob.size === 0;
  }

  /** The stricter of every rule matching a stream key (its path); NO_POLICY if none does. */
  policyFor(path: string | null): RetentionPolicy {
    if (path === null) return NO_POLICY;
    return this.globs.matching(path).reduce((p, g) => stricter(p, this.byGlob.get(g)!), NO_POLICY);
  }
}

/** Reads and validates the rules file; a bad file stops start-up with the reason. */
export function loadRetentionRules(file: string | undefined): RetentionRules {
  if (!file) return new RetentionRules([]);
  const raw: unknown = JSON.parse(readFileSync(file, "utf8"));
  const errors = [...Value.Errors(RulesFileSchema, raw)];
  if (errors.length) {
    throw new Error(`RETENTION_RULES_FILE ${file}: ${errors.map((e) => `${e.path || "/"}: ${e.message}`).join("; ")}`);
  }
  return new RetentionRules((raw as Static<typeof RulesFileSchema>).rules);
}
