// Pure parts of subscription scoping: whether a subscription glob lies inside permission
// globs (an exact answer, with an example path when it does not), and the stored scope.
import { describe, expect, test } from "bun:test";
import { compileGlob } from "../../src/auth/permissions.ts";
import { globMatches } from "../../src/protocol/glob.ts";
import { uncoveredPath } from "../../src/protocol/glob-cover.ts";
import { scopeReader } from "../../src/subscriptions/scope.ts";

describe("a subscription glob inside permission globs", () => {
  const cases: [string, string[], boolean][] = [
    ["**", ["a/**"], false],
    ["**", ["**"], true],
    ["*", ["*"], true],
    ["a/**", ["a/**"], true],
    ["a/*", ["a/**"], true],
    ["a/**", ["a/*"], false],
    ["a/**", ["a", "a/*/**"], true],
    ["a/**", ["a/*/**"], false],
    ["a/*/c", ["a/b/c"], false],
    ["a/*/c", ["a/b/c", "a/*/*"], true],
    ["a/b", ["a/*"], true],
    ["a/b", ["a/c"], false],
    ["*/x", ["a/x", "b/x"], false],
    ["**/x", ["**/x"], true],
    ["**/x", ["**"], true],
    ["a/**/z", ["a/**"], true],
    ["a/**/z", ["**/z"], true],
    ["a/**/z", ["a/*/z"], false],
    ["a/**", ["/a/**"], true],
    ["a/**", [], false],
    ["a*", ["a/**"], false],
    ["a*", ["a*"], true],
    ["a/**", ["a//**"], false],
  ];
  for (const [glob, grants, inside] of cases) {
    test(`${glob} ${inside ? "lies" : "does not lie"} inside ${JSON.stringify(grants)}`, () => {
      const gap = uncoveredPath(glob, grants);
      expect(gap === undefined).toBe(inside);
      if (gap) {
        // The example is a path the glob matches and no grant does.
        const path = gap.example.split("/");
        expect(globMatches(glob.split("/"), path)).toBe(true);
        expect(grants.some((g) => compileGlob(g)(gap.example))).toBe(false);
      }
    });
  }

  // No timing assertion: an exponential walk of these globs runs past the test's timeout;
  // the product walk answers in milliseconds.
  test("deep globs stay cheap", () => {
    const glob = "**/a/**/b/**/c/**/d";
    expect(uncoveredPath(glob, ["**/a/**", "x/**", "*/b/*/**", "**/c/d", "q/*/r/**"])).toBeUndefined();
    expect(uncoveredPath(glob, ["*/a/**", "x/**", "*/b/*/**", "**/c/d"])).toBeDefined();
  }, 10_000);
});

describe("a stored scope", () => {
  test("no scope (created without auth) covers everything; a scope only its read globs", () => {
    expect(scopeReader(null, undefined)("b/secret")).toBe(true);
    const reader = scopeReader({ principal: "t", source: "jwt", read: ["a/**"] }, undefined);
    expect(reader("a/x")).toBe(true);
    expect(reader("b/secret")).toBe(false);
    expect(scopeReader({ principal: "t", source: "jwt", read: [] }, undefined)("a/x")).toBe(false);
  });
});
