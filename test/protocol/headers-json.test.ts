import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/settings.ts";
import { isJsonType, isTextForSse, sameContentType } from "../../src/protocol/content-type.ts";
import { BadRequest } from "../../src/protocol/errors.ts";
import { isClosedHeader, parseExpiry, parseProducer } from "../../src/protocol/headers.ts";
import { concatBytes } from "../../src/lib/bytes.ts";
import { jsonArrayParts, splitJsonMessages } from "../../src/protocol/json.ts";
import { messageTexts } from "../support/json.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("request headers", () => {
  test("Stream-TTL is a plain non-negative decimal", () => {
    expect(parseExpiry("3600", null).ttlSeconds).toBe(3600);
    expect(parseExpiry("0", null).ttlSeconds).toBe(0);
    for (const bad of ["abc", "-1", "00060", "+60", "60.5", "1e3", ""]) expect(() => parseExpiry(bad, null)).toThrow(BadRequest);
  });

  test("Stream-Expires-At is RFC 3339 and exclusive with Stream-TTL", () => {
    const iso = "2030-01-02T03:04:05.678Z";
    expect(parseExpiry(null, iso).expiresAt?.toISOString()).toBe(iso);
    expect(parseExpiry(null, iso.replace("Z", "+00:00")).expiresAt?.toISOString()).toBe(iso);
    expect(() => parseExpiry(null, "not-a-timestamp")).toThrow(BadRequest);
    expect(() => parseExpiry(null, "2030-13-45T99:00:00Z")).toThrow(BadRequest);
    expect(() => parseExpiry("10", iso)).toThrow(BadRequest);
  });

  test("producer headers come all together, as safe integers", () => {
    expect(parseProducer(null, null, null)).toBeUndefined();
    expect(parseProducer("p", "1", "2")).toEqual({ id: "p", epoch: 1, seq: 2 });
    expect(() => parseProducer("p", "1", null)).toThrow(BadRequest);
    expect(() => parseProducer("", "1", "2")).toThrow(BadRequest);
    for (const bad of ["1abc", "-1", "1e3", "0x1", "9007199254740992"]) expect(() => parseProducer("p", bad, "0")).toThrow(BadRequest);
  });

  test("Stream-Closed counts only when it says true", () => {
    expect(isClosedHeader("true")).toBe(true);
    expect(isClosedHeader("TRUE")).toBe(true);
    for (const v of [null, "false", "yes", "1", ""]) expect(isClosedHeader(v)).toBe(false);
  });

  test("content types compare by media type", () => {
    expect(sameContentType("Application/JSON; charset=utf-8", "application/json")).toBe(true);
    expect(sameContentType("text/plain", "text/html")).toBe(false);
    expect(isJsonType("application/json;charset=utf-8")).toBe(true);
    expect(isTextForSse("text/csv")).toBe(true);
    expect(isTextForSse("application/octet-stream")).toBe(false);
  });
});

describe("JSON mode (9.1)", () => {
  const split = (s: string, allowEmptyArray = false) => messageTexts(splitJsonMessages(enc(s), { allowEmptyArray }));

  test("flattens exactly one level of array", () => {
    expect(split('{"event":"created"}')).toEqual(['{"event":"created"}']);
    expect(split('[{"a":1},{"b":2}]')).toEqual(['{"a":1}', '{"b":2}']);
    expect(split("[[1,2],[3,4]]")).toEqual(["[1,2]", "[3,4]"]);
    expect(split("[[[1,2,3]]]")).toEqual(["[[1,2,3]]"]);
    expect(split('[null, "x", 1.5, true]')).toEqual(["null", '"x"', "1.5", "true"]);
  });

  test("empty arrays: an error for appends, an empty stream for creates", () => {
    expect(() => split("[]")).toThrow(BadRequest);
    expect(split("[]", true)).toEqual([]);
  });

  test("invalid JSON and invalid UTF-8 are bad requests", () => {
    expect(() => split("{ invalid json }")).toThrow(BadRequest);
    expect(() => splitJsonMessages(new Uint8Array([0x22, 0xff, 0x22]), { allowEmptyArray: false })).toThrow(BadRequest);
  });

  test("responses frame messages as one array", () => {
    expect(dec(concatBytes(jsonArrayParts([enc("1"), enc('{"a":2}')])))).toBe('[1,{"a":2}]');
    expect(dec(concatBytes(jsonArrayParts([])))).toBe("[]");
  });
});

describe("configuration", () => {
  test("defaults and the documented names", () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(4437);
    expect(c.HOST).toBe("127.0.0.1");
    expect(c.DATA_DIR).toBe("./data");
    expect(c.LONG_POLL_TIMEOUT_MS).toBe(30_000);
    expect(c.DATABASE_URL).toBeUndefined();
    expect(loadConfig({ PORT: "8080", LONG_POLL_TIMEOUT_MS: "500" })).toMatchObject({ PORT: 8080, LONG_POLL_TIMEOUT_MS: 500 });
  });

  test("bad values stop start-up with a clear message", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT/);
    expect(() => loadConfig({ LONG_POLL_TIMEOUT_MS: "-5" })).toThrow(/LONG_POLL_TIMEOUT_MS/);
    expect(() => loadConfig({ DATABASE_SCHEMA: "x; drop" })).toThrow(/DATABASE_SCHEMA/);
  });
});

describe("values Postgres cannot hold are the client's error (400), not a 500", () => {
  test("Stream-TTL above 1,000 years", () => {
    expect(parseExpiry("31557600000", null).ttlSeconds).toBe(31_557_600_000);
    expect(() => parseExpiry("31557600001", null)).toThrow(BadRequest);
    expect(() => parseExpiry("9223372036854", null)).toThrow(BadRequest);
  });

  test("Stream-Expires-At outside years 1-9999 (after applying the offset) or not on the calendar", () => {
    for (const bad of ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
      "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01T10:60:00Z", "2030-01-01T10:00:00+24:00"]) {
      expect(() => parseExpiry(null, bad)).toThrow(BadRequest);
    }
    expect(parseExpiry(null, "2024-02-29T00:00:00Z").expiresAt?.toISOString()).toBe("2024-02-29T00:00:00.000Z");
    expect(parseExpiry(null, "0001-01-01T00:00:00Z").expiresAt?.toISOString()).toBe("0001-01-01T00:00:00.000Z");
    expect(parseExpiry(null, "9999-12-31T23:59:59Z").expiresAt?.toISOString()).toBe("9999-12-31T23:59:59.000Z");
    expect(parseExpiry(null, "2030-01-01T10:00:00.5+02:00").expiresAt?.toISOString()).toBe("2030-01-01T08:00:00.500Z");
  });

  test("JSON nested deeper than the runtime's stack", () => {
    const deep = new TextEncoder().encode("[".repeat(200_000) + "]".repeat(200_000));
    // Deno parses and serialises it, Bun's stack does not reach: either way no stack overflow escapes.
    try {
      expect(splitJsonMessages(deep, { allowEmptyArray: false }).count).toBe(1);
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequest);
    }
  });
});

describe("SSE framing", () => {
  test("a line that starts with a space keeps it (parsers drop one space after data:); others are bare", async () => {
    const { sseEvent } = await import("../../src/protocol/sse.ts");
    expect(sseEvent("data", "  indented\nplain")).toBe("event: data\ndata:   indented\ndata:plain\n\n");
  });
});
