import { describe, expect, test } from "bun:test";
import { applyWrite, type AppendInput, decideAppend, type WriterState } from "../../src/protocol/append-rules.ts";
import { BadRequest, Conflict, ProducerFenced, ProducerSeqGap, StreamClosedConflict } from "../../src/protocol/errors.ts";
import { decideProducer } from "../../src/protocol/producer.ts";
import { jsonMessages } from "../support/json.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("idempotent producer rules (5.2.1)", () => {
  test("a new producer must start at seq 0, any epoch", () => {
    expect(decideProducer(undefined, { id: "p", epoch: 3, seq: 0 })).toEqual({ kind: "accept", next: { epoch: 3, lastSeq: 0 } });
    expect(() => decideProducer(undefined, { id: "p", epoch: 0, seq: 1 })).toThrow(ProducerSeqGap);
  });

  test("next seq accepted, repeats are duplicates, gaps conflict with expected/received", () => {
    const s = { epoch: 1, lastSeq: 4 };
    expect(decideProducer(s, { id: "p", epoch: 1, seq: 5 })).toEqual({ kind: "accept", next: { epoch: 1, lastSeq: 5 } });
    expect(decideProducer(s, { id: "p", epoch: 1, seq: 4 }).kind).toBe("duplicate");
    expect(decideProducer(s, { id: "p", epoch: 1, seq: 0 }).kind).toBe("duplicate");
    try {
      decideProducer(s, { id: "p", epoch: 1, seq: 7 });
      throw new Error("expected a gap");
    } catch (e) {
      expect(e).toBeInstanceOf(ProducerSeqGap);
      expect((e as ProducerSeqGap).headers).toEqual({ "Producer-Expected-Seq": "5", "Producer-Received-Seq": "7" });
    }
  });

  test("stale epochs are fenced with the current epoch; new epochs start at 0", () => {
    const s = { epoch: 2, lastSeq: 9 };
    try {
      decideProducer(s, { id: "p", epoch: 1, seq: 10 });
      throw new Error("expected fencing");
    } catch (e) {
      expect(e).toBeInstanceOf(ProducerFenced);
      expect((e as ProducerFenced).headers["Producer-Epoch"]).toBe("2");
    }
    expect(() => decideProducer(s, { id: "p", epoch: 3, seq: 1 })).toThrow(BadRequest);
    expect(decideProducer(s, { id: "p", epoch: 3, seq: 0 })).toEqual({ kind: "accept", next: { epoch: 3, lastSeq: 0 } });
  });
});

function state(over: Partial<WriterState> = {}): WriterState {
  return { contentType: "text/plain", isJson: false, tail: 10, closed: false, closedBy: null, lastSeq: null, producers: new Map(), ...over };
}
function input(over: Partial<AppendInput> = {}): AppendInput {
  return { contentType: "text/plain", body: bytes("abc"), messages: null, close: false, streamSeq: null, ...over };
}

describe("append rules (5.2, 5.3)", () => {
  test("closed stream: conflict with the final offset, unless a repeated close or the closing producer", () => {
    const s = state({ closed: true, closedBy: { id: "p", epoch: 0, seq: 3 } });
    try {
      decideAppend(s, input());
      throw new Error("expected conflict");
    } catch (e) {
      expect(e).toBeInstanceOf(StreamClosedConflict);
      expect((e as StreamClosedConflict).headers["Stream-Next-Offset"]).toBe("0000000000000000_0000000000000010");
    }
    expect(decideAppend(s, input({ body: new Uint8Array(0), close: true })).kind).toBe("noop");
    expect(decideAppend(s, input({ producer: { id: "p", epoch: 0, seq: 3 } })).kind).toBe("noop");
    expect(() => decideAppend(s, input({ producer: { id: "p", epoch: 0, seq: 4 } }))).toThrow(StreamClosedConflict);
  });

  test("closed takes precedence over content type; content type over sequence", () => {
    expect(() => decideAppend(state({ closed: true }), input({ contentType: "image/png" }))).toThrow(StreamClosedConflict);
    expect(() => decideAppend(state({ lastSeq: "b" }), input({ contentType: "image/png", streamSeq: "a" }))).toThrow(
      /Content-Type/,
    );
  });

  test("content type compares by media type; missing type with data is a bad request", () => {
    expect(decideAppend(state(), input({ contentType: "TEXT/PLAIN; charset=utf-8" })).kind).toBe("write");
    expect(() => decideAppend(state(), input({ contentType: null }))).toThrow(BadRequest);
    // a close-only request ignores its content type
    expect(decideAppend(state(), input({ contentType: "image/png", body: new Uint8Array(0), close: true })).kind).toBe("write");
  });

  test("Stream-Seq must strictly increase, byte-wise", () => {
    expect(() => decideAppend(state({ lastSeq: "2" }), input({ streamSeq: "10" }))).toThrow(Conflict);
    expect(() => decideAppend(state({ lastSeq: "a" }), input({ streamSeq: "B" }))).toThrow(Conflict);
    expect(() => decideAppend(state({ lastSeq: "09" }), input({ streamSeq: "09" }))).toThrow(Conflict);
    expect(decideAppend(state({ lastSeq: "09" }), input({ streamSeq: "10" })).kind).toBe("write");
  });

  test("a producer retry is a duplicate even when it repeats its Stream-Seq", () => {
    const s = state({ lastSeq: "s1", producers: new Map([["p", { epoch: 0, lastSeq: 0 }]]) });
    expect(decideAppend(s, input({ streamSeq: "s1", producer: { id: "p", epoch: 0, seq: 0 } })).kind).toBe("noop");
  });

  test("applyWrite chains state so a group can decide appends in order", () => {
    const s = state({ isJson: true, contentType: "application/json", tail: 0 });
    const first = input({ contentType: "application/json", body: bytes("[1,2]"), messages: jsonMessages([bytes("1"), bytes("2")]), streamSeq: "a" });
    const d1 = decideAppend(s, first);
    if (d1.kind !== "write") throw new Error("expected write");
    applyWrite(s, first, d1);
    expect(s.tail).toBe(2);
    expect(s.lastSeq).toBe("a");
    const closing = input({ body: new Uint8Array(0), close: true, producer: { id: "q", epoch: 0, seq: 0 } });
    const d2 = decideAppend(s, closing);
    if (d2.kind !== "write") throw new Error("expected write");
    applyWrite(s, closing, d2);
    expect(s.closed).toBe(true);
    expect(s.closedBy).toEqual({ id: "q", epoch: 0, seq: 0 });
    expect(() => decideAppend(s, first)).toThrow(StreamClosedConflict);
  });
});
