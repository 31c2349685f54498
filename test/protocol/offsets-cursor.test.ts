import { describe, expect, test } from "bun:test";
import { currentInterval, nextCursor } from "../../src/protocol/cursor.ts";
import { formatOffset, parseOffset } from "../../src/protocol/offsets.ts";

describe("offsets", () => {
  test("sort lexicographically in position order", () => {
    const positions = [0, 1, 9, 10, 99, 100, 12345678, 2 ** 40];
    const tokens = positions.map(formatOffset);
    expect([...tokens].sort()).toEqual(tokens);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  test("round-trip through parseOffset", () => {
    for (const p of [0, 5, 123456789]) expect(parseOffset(formatOffset(p))).toEqual({ kind: "position", position: p });
  });

  test("sentinels and absence", () => {
    expect(parseOffset(null)).toEqual({ kind: "start" });
    expect(parseOffset("-1")).toEqual({ kind: "start" });
    expect(parseOffset("now")).toEqual({ kind: "now" });
  });

  test("never mint a sentinel or a reserved character", () => {
    const t = formatOffset(0);
    expect(t).not.toBe("-1");
    expect(t).not.toBe("now");
    expect(t).not.toMatch(/[,&=?/]/);
  });

  test("reject malformed offsets", () => {
    for (const bad of ["", " ", "abc", "0,1", "0 1", "../x", "1_2", "-2", "NOW", "0000000000000000_000000000000000x", "0000000000000000_0000000000000000\n"]) {
      expect(parseOffset(bad)).toBeUndefined();
    }
  });

  test("a well-formed offset of another generation lies beyond every tail", () => {
    expect(parseOffset("9999999999999999_9999999999999999")).toEqual({ kind: "position", position: Infinity });
  });
});

describe("cursor", () => {
  const now = Date.UTC(2026, 0, 1);

  test("is the 20 s interval number since 2024-10-09", () => {
    expect(nextCursor(null, now)).toBe(String(currentInterval(now)));
    expect(currentInterval(Date.UTC(2024, 9, 9) + 40_000)).toBe(2);
  });

  test("an echoed cursor at or past the clock moves strictly forward", () => {
    const c = currentInterval(now);
    for (const r of [0, 0.5, 0.9999]) {
      const next = Number(nextCursor(String(c), now, () => r));
      expect(next).toBeGreaterThan(c);
      expect(next).toBeLessThanOrEqual(c + 180);
    }
    expect(Number(nextCursor(String(c + 500), now, () => 0))).toBeGreaterThan(c + 500);
  });

  test("an old or garbage cursor yields the current interval", () => {
    expect(nextCursor("5", now)).toBe(String(currentInterval(now)));
    expect(nextCursor("x1", now)).toBe(String(currentInterval(now)));
  });
});
