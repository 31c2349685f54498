// The JSON body split of issue 25, item 3: array bodies are cut into messages by a scan
// (never one JS value per message for the whole body), each message validated on its own.
import { describe, expect, test } from "bun:test";
import { MAX_DEPTH, splitJsonMessages } from "../../src/protocol/json.ts";
import { BadRequest, PayloadTooLarge } from "../../src/protocol/errors.ts";
import { messageTexts } from "../support/json.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const split = (s: string, maxMessages?: number) => messageTexts(splitJsonMessages(enc(s), { allowEmptyArray: false, maxMessages }));

describe("splitJsonMessages", () => {
  test("top-level elements, stored compactly; brackets and commas inside strings are data", () => {
    expect(split(' [ 1 , {"a" : [1, 2]}, "x,]}\\"[" , null ,[ ] ] ')).toEqual(["1", '{"a":[1,2]}', '"x,]}\\"["', "null", "[]"]);
    expect(split('{"a": 1}')).toEqual(['{"a":1}']);
    expect(split("[1e3, 1.0]")).toEqual(["1000", "1"]);
  });

  test("malformed arrays are 400s", () => {
    for (const bad of ["[1,]", "[,1]", "[1 2]", "[1]]", "[1] x", "[1", '["a]', "[{]", "[}]", '[{"a":1]}]', "[1,,2]"]) {
      expect(() => split(bad)).toThrow(BadRequest);
    }
  });

  test("more messages than the cap is a 413, counted before any is parsed", () => {
    expect(split("[1,2,3]", 3)).toEqual(["1", "2", "3"]);
    expect(() => split("[1,2,3,4]", 3)).toThrow(PayloadTooLarge);
    // ~700k messages: a 413, not a stack overflow
    expect(() => split(`[${"1,".repeat(700_000)}1]`, 100_000)).toThrow(PayloadTooLarge);
  });

  test("nesting deeper than MAX_DEPTH is a 400 before any parse; up to it is fine", () => {
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    expect(split(`[${nest(MAX_DEPTH - 1)}]`).length).toBe(1);
    expect(() => split(`[${nest(MAX_DEPTH)}]`)).toThrow(BadRequest);
    expect(() => split(nest(200_000))).toThrow(BadRequest);
    expect(split('["[[[[[[[[[["]')).toEqual(['"[[[[[[[[[["']);
  });

  test("messages come out in order", () => {
    const out = splitJsonMessages(enc(JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i })))), { allowEmptyArray: false });
    expect(out.count).toBe(1000);
    expect(messageTexts(out).map((m) => JSON.parse(m).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});
