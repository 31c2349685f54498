// The text form of change notifications (store/streams/change.ts).
import { expect, test } from "bun:test";
import { formatChange, inlineChars, mergeState, NOTIFY_INLINE_CHARS, NOTIFY_PACK_CHARS, parseNotification } from "../../src/store/streams/change.ts";

const bytes = (...v: number[]) => new Uint8Array(v);

test("changes round-trip: state only, data (binary and empty), bare ids, several per payload", () => {
  const binary = [bytes(0, 255, 58, 44, 46), bytes()];
  const payload = [
    formatChange(7, 120, false),
    formatChange(8, 5, true, { from: 0, units: binary }),
    formatChange(9, 40, true, { from: 40, units: [] }),
    "10",
  ].join(",");
  expect(parseNotification(payload)).toEqual([
    { id: 7, state: { tail: 120, closed: false } },
    { id: 8, state: { tail: 5, closed: true }, data: { from: 0, units: binary } },
    { id: 9, state: { tail: 40, closed: true }, data: { from: 40, units: [] } },
    { id: 10 },
  ]);
});

test("malformed parts are skipped, and an unreadable tail degrades to a bare id", () => {
  expect(parseNotification("ping")).toEqual([]);
  expect(parseNotification("x:1:0,3:zz:1,,4")).toEqual([{ id: 3 }, { id: 4 }]);
});

test("one change with the largest inline data plus a full pack stays under Postgres' 8,000 bytes", () => {
  // the append path inlines units while their inlineChars sum stays within the limit
  const units = Array.from({ length: Math.floor(NOTIFY_INLINE_CHARS / inlineChars(bytes(1))) }, () => bytes(1));
  const max = formatChange(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true, { from: Number.MAX_SAFE_INTEGER, units });
  // a single append of up to 2 KiB always travels inline
  expect(inlineChars(new Uint8Array(2048))).toBeLessThanOrEqual(NOTIFY_INLINE_CHARS);
  // a pack closes once it holds NOTIFY_PACK_CHARS, so it is at most that plus one change
  expect(NOTIFY_PACK_CHARS + max.length + 1).toBeLessThan(8000);
});

test("merging a notified state: a tail only grows, a closed stream stays closed", () => {
  const known = { tail: 10, closed: false, extra: "kept" };
  expect(mergeState(known, { tail: 10, closed: false })).toBe(known);
  expect(mergeState(known, { tail: 4, closed: false })).toBe(known); // an older notification
  expect(mergeState(known, { tail: 12, closed: false })).toEqual({ tail: 12, closed: false, extra: "kept" });
  expect(mergeState(known, { tail: 10, closed: true })).toEqual({ tail: 10, closed: true, extra: "kept" });
  const closed = { tail: 10, closed: true };
  expect(mergeState(closed, { tail: 10, closed: false })).toBe(closed);
  expect(mergeState(closed, { tail: 9, closed: false })).toBe(closed);
});
