// The JSON body split of issue 25, item 3: array bodies are cut into messages by a scan
// (never one JS value per message for the whole body), each message validated on its own.
import { describe, expect, test } from "bun:test";
import { MAX_DEPTH, splitJsonMessages } from "../../src/protocol/json.ts";
import { isCompactJson } from "../../src/protocol/json-compact.ts";
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

describe("messages written over the body (issue 25: one buffer, no object per message)", () => {
  const elements = [
    "1", "-12", "0", "-0", "1.0", "1e2", "1E21", "1e21", "123456789012345678", "0.1", "true", "false", "null",
    '"a"', '""', '"é ☃ 😀"', '"\\u0041"', '"\\n"', '"\\/"', '"a\\"b"', "[]", "{}", "[1,[2,[3]]]",
    '{"a":1,"b":[true,null]}', '{"b":1,"a":2}', '{"a":1,"a":2}', '{"2":1,"1":2}', '{"x":1,"10":2}', '{ "a" : 1 }',
    '{"__proto__":1}', '{"a":{"b":{"c":"d"}}}', '[1, 2]', '"\\ud83d\\ude00"', `{${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(",")}}`,
  ];
  const expected = (texts: string[]) => texts.map((t) => JSON.stringify(JSON.parse(t)));

  test("each message is stored as JSON.stringify writes it, in place or not", () => {
    expect(messageTexts(splitJsonMessages(enc(`[${elements.join(",")}]`), { allowEmptyArray: false }))).toEqual(expected(elements));
    // Messages that grow when re-serialised, packed tight, first and last: the rest moves out of the body.
    const growing = ["1e21", "1E2", "1e1", "2e0", ...elements, "1e9"];
    expect(messageTexts(splitJsonMessages(enc(`[${growing.join(",")}]`), { allowEmptyArray: false }))).toEqual(expected(growing));
    // A body that is one message (not an array): stored itself when compact, else re-serialised.
    for (const e of elements.filter((x) => !x.startsWith("["))) expect(messageTexts(splitJsonMessages(enc(`  ${e}  `), { allowEmptyArray: false }))).toEqual(expected([e]));
  });

  test("a random mix in random whitespace comes out as JSON.stringify writes each message", () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 200; round++) {
      const picked = Array.from({ length: 1 + rand(30) }, () => elements[rand(elements.length)]);
      const body = `[${picked.map((p) => " ".repeat(rand(3)) + p + " ".repeat(rand(2))).join(",")}]`;
      expect(messageTexts(splitJsonMessages(enc(body), { allowEmptyArray: false }))).toEqual(expected(picked));
    }
  });
});

describe("isCompactJson", () => {
  const compact = (s: string) => isCompactJson(enc(s), 0, enc(s).byteLength);

  test("says yes only to what JSON.stringify would write the same", () => {
    for (const yes of ["1", "-12", "0", "true", "null", '"a"', '"é ☃"', "[]", "{}", '{"a":1,"b":[true,null,"x"]}', '{"b":1,"a":2}', '{"__proto__":1}']) {
      expect(compact(yes)).toBe(true);
    }
    for (const no of ["-0", "01", "1.0", "1.5", "1e2", "1234567890123456", '"\\n"', '"a\\"b"', "[1, 2]", '{"a":1,"a":2}', '{"1":1}', "tru", "[1,]", "{,}", '{"a"}', '"a', "1 "]) {
      expect(compact(no)).toBe(false);
    }
  });

  test("never yes where the parse disagrees (random texts built from JSON pieces)", () => {
    const pieces = ["1", "0", "-", ".", "e", "2", '"', "a", "\\", ",", ":", "[", "]", "{", "}", "true", "null", " ", '"k"'];
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let yes = 0;
    for (let i = 0; i < 50_000; i++) {
      const text = Array.from({ length: 1 + rand(8) }, () => pieces[rand(pieces.length)]).join("");
      if (!compact(text)) continue;
      yes++;
      expect(JSON.stringify(JSON.parse(text))).toBe(text);
    }
    expect(yes).toBeGreaterThan(100);
  });
});
