// The close rule of 5.2.1 for close-only requests (issue 26.2) and compare-and-append
// (Stream-Expected-Offset, issue 26.3), as pure decisions.
import { describe, expect, test } from "bun:test";
import { applyWrite, type AppendInput, decideAppend, type WriterState } from "../../src/protocol/append-rules.ts";
import { BadRequest, Conflict, ExpectedOffsetConflict, ProducerSeqGap, StreamClosedConflict } from "../../src/protocol/errors.ts";
import { parseExpectedOffset } from "../../src/protocol/headers.ts";
import { formatOffset } from "../../src/protocol/offsets.ts";
import { jsonMessages } from "../support/json.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);

function state(over: Partial<WriterState> = {}): WriterState {
  return { contentType: "text/plain", isJson: false, tail: 10, closed: false, closedBy: null, lastSeq: null, producers: new Map(), ...over };
}
function input(over: Partial<AppendInput> = {}): AppendInput {
  return { contentType: "text/plain", body: bytes("abc"), messages: null, close: false, streamSeq: null, ...over };
}
function conflictOf(f: () => unknown): Conflict {
  try {
    f();
  } catch (e) {
    if (e instanceof Conflict) return e;
    throw e;
  }
  throw new Error("expected a conflict");
}

describe("close-only on a closed stream with producer headers (5.2.1)", () => {
  const closed = () => state({ closed: true, closedBy: { id: "a", epoch: 1, seq: 4 }, producers: new Map([["a", { epoch: 1, lastSeq: 4 }]]) });
  const closeOnly = (id: string, epoch: number, seq: number) => input({ body: EMPTY, close: true, producer: { id, epoch, seq } });

  test("the closing tuple repeated is the duplicate answer", () => {
    expect(decideAppend(closed(), closeOnly("a", 1, 4))).toEqual({ kind: "noop", producerState: { epoch: 1, lastSeq: 4 } });
  });

  test("another producer gets 409 with Stream-Closed and the final offset", () => {
    const e = conflictOf(() => decideAppend(closed(), closeOnly("b", 0, 0)));
    expect(e).toBeInstanceOf(StreamClosedConflict);
    expect(e.headers).toEqual({ "Stream-Closed": "true", "Stream-Next-Offset": formatOffset(10) });
  });

  test("the closing producer with another epoch or seq gets 409", () => {
    for (const [epoch, seq] of [[1, 5], [1, 3], [2, 0], [0, 4]]) {
      expect(conflictOf(() => decideAppend(closed(), closeOnly("a", epoch, seq)))).toBeInstanceOf(StreamClosedConflict);
    }
  });

  test("a stream closed without producer headers: a producer's close-only is 409, a plain close-only stays idempotent", () => {
    const s = state({ closed: true });
    expect(conflictOf(() => decideAppend(s, closeOnly("a", 0, 0)))).toBeInstanceOf(StreamClosedConflict);
    expect(decideAppend(s, input({ body: EMPTY, close: true })).kind).toBe("noop");
  });
});

describe("compare-and-append (Stream-Expected-Offset)", () => {
  test("appends when the tail is the expected offset, else 409 with the current tail", () => {
    expect(decideAppend(state(), input({ expectedOffset: formatOffset(10) })).kind).toBe("write");
    const e = conflictOf(() => decideAppend(state(), input({ expectedOffset: formatOffset(7) })));
    expect(e).toBeInstanceOf(ExpectedOffsetConflict);
    expect(e.headers).toEqual({ "Stream-Next-Offset": formatOffset(10) });
  });

  test("within a group the tail compared is the one after the earlier appends", () => {
    const s = state({ tail: 0 });
    const first = input({ body: bytes("abcd"), expectedOffset: formatOffset(0) });
    const d = decideAppend(s, first);
    if (d.kind !== "write") throw new Error("expected write");
    applyWrite(s, first, d);
    // the second writer raced with the same tail: refused, told the new one
    expect(conflictOf(() => decideAppend(s, input({ expectedOffset: formatOffset(0) }))).headers["Stream-Next-Offset"]).toBe(formatOffset(4));
    expect(decideAppend(s, input({ expectedOffset: formatOffset(4) })).kind).toBe("write");
  });

  test("a producer's duplicate is answered as a duplicate although the tail moved", () => {
    const s = state({ tail: 20, producers: new Map([["p", { epoch: 0, lastSeq: 3 }]]) });
    expect(decideAppend(s, input({ producer: { id: "p", epoch: 0, seq: 3 }, expectedOffset: formatOffset(10) })).kind).toBe("noop");
  });

  test("a refused conditional append consumes no producer seq or Stream-Seq", () => {
    const s = state({ producers: new Map([["p", { epoch: 0, lastSeq: 0 }]]), lastSeq: "a" });
    const req = input({ producer: { id: "p", epoch: 0, seq: 1 }, streamSeq: "b", expectedOffset: formatOffset(9) });
    expect(conflictOf(() => decideAppend(s, req))).toBeInstanceOf(ExpectedOffsetConflict);
    expect(s.producers.get("p")).toEqual({ epoch: 0, lastSeq: 0 });
    expect(s.lastSeq).toBe("a");
    expect(decideAppend(s, { ...req, expectedOffset: formatOffset(10) }).kind).toBe("write");
  });

  test("producer and Stream-Seq checks still apply first", () => {
    const s = state({ lastSeq: "b", producers: new Map([["p", { epoch: 0, lastSeq: 0 }]]) });
    const stale = formatOffset(1);
    expect(() => decideAppend(s, input({ producer: { id: "p", epoch: 0, seq: 5 }, expectedOffset: stale }))).toThrow(ProducerSeqGap);
    const e = conflictOf(() => decideAppend(s, input({ streamSeq: "a", expectedOffset: stale })));
    expect(e).not.toBeInstanceOf(ExpectedOffsetConflict);
  });

  test("a closed stream answers as closed whatever the expected offset", () => {
    const s = state({ closed: true });
    for (const expectedOffset of [formatOffset(10), formatOffset(3)]) {
      expect(conflictOf(() => decideAppend(s, input({ expectedOffset })))).toBeInstanceOf(StreamClosedConflict);
      expect(conflictOf(() => decideAppend(s, input({ close: true, expectedOffset })))).toBeInstanceOf(StreamClosedConflict);
    }
  });

  test("append-and-close and close-only are conditional too", () => {
    expect(conflictOf(() => decideAppend(state(), input({ close: true, expectedOffset: formatOffset(0) })))).toBeInstanceOf(ExpectedOffsetConflict);
    expect(conflictOf(() => decideAppend(state(), input({ body: EMPTY, close: true, expectedOffset: formatOffset(0) })))).toBeInstanceOf(
      ExpectedOffsetConflict,
    );
    const d = decideAppend(state(), input({ close: true, expectedOffset: formatOffset(10) }));
    expect(d.kind === "write" && d.closes).toBe(true);
  });

  test("JSON: a multi-message array is one append, compared against the message-count tail", () => {
    const s = state({ isJson: true, contentType: "application/json", tail: 2 });
    const msgs = input({ contentType: "application/json", body: bytes("[1,2,3]"), messages: jsonMessages([bytes("1"), bytes("2"), bytes("3")]) });
    expect(conflictOf(() => decideAppend(s, { ...msgs, expectedOffset: formatOffset(3) }))).toBeInstanceOf(ExpectedOffsetConflict);
    const d = decideAppend(s, { ...msgs, expectedOffset: formatOffset(2) });
    if (d.kind !== "write") throw new Error("expected write");
    expect(d.units).toBe(3);
    applyWrite(s, msgs, d);
    expect(s.tail).toBe(5);
  });

  test("the header must be an offset token; -1, now and junk are bad requests", () => {
    expect(parseExpectedOffset(null)).toBeNull();
    expect(parseExpectedOffset(` ${formatOffset(5)} `)).toBe(formatOffset(5));
    for (const bad of ["", "-1", "now", "5", "0000000000000000_5", "abc", `${formatOffset(5)}x`]) {
      expect(() => parseExpectedOffset(bad)).toThrow(BadRequest);
    }
  });
});
