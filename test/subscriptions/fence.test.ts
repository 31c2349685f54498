// The pure subscription rules (src/protocol/wake-fence.ts, subscription-requests.ts), without
// a database: what a stale, forged or misdirected wake call is refused for, which acks are
// out of range, how bodies are read, and the path limit taken from MAX_PATH_BYTES.
import { describe, expect, test } from "bun:test";
import { SubscriptionError } from "../../src/protocol/errors.ts";
import { parseAddStreams, parseClaimWorker, parseRemovedStream, parseWakeCall, relativePath } from "../../src/protocol/subscription-requests.ts";
import { checkAcks, checkFence, type FenceRow, type WakeCall } from "../../src/protocol/wake-fence.ts";

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof SubscriptionError ? e.code : String(e);
  }
  return undefined;
}

const row: FenceRow = { incarnation: 3, type: "pull-wake", generation: 7, wakeId: "w_1", holder: "worker", leaseLapsed: false };
const call: WakeCall = {
  id: "s", type: "pull-wake", token: { incarnation: 3, generation: 7, wakeId: "w_1" }, generation: 7, wakeId: "w_1", acks: new Map(), done: false,
};

describe("the wake fence (PROTOCOL 7.3)", () => {
  test("the call of the wake in flight passes", () => {
    expect(codeOf(() => checkFence(row, call))).toBeUndefined();
  });
  const refused: [string, Partial<FenceRow>, Partial<WakeCall>, string][] = [
    ["another type", {}, { type: "webhook" }, "INVALID_REQUEST"],
    ["an earlier incarnation's token", {}, { token: { ...call.token, incarnation: 2 } }, "FENCED"],
    ["no wake in flight", { wakeId: null }, {}, "FENCED"],
    ["a stale token generation", {}, { token: { ...call.token, generation: 6 } }, "FENCED"],
    ["a stale body generation", {}, { generation: 6 }, "FENCED"],
    ["another wake id in the body", {}, { wakeId: "w_2" }, "FENCED"],
    ["another wake id in the token", {}, { token: { ...call.token, wakeId: "w_2" } }, "FENCED"],
    ["a lapsed lease", { leaseLapsed: true }, {}, "FENCED"],
    ["a pull-wake wake nobody claimed", { holder: null }, {}, "FENCED"],
  ];
  for (const [what, r, c, code] of refused) {
    test(`refuses ${what}`, () => expect(codeOf(() => checkFence({ ...row, ...r }, { ...call, ...c }))).toBe(code));
  }
  test("a webhook wake needs no holder", () => {
    expect(codeOf(() => checkFence({ ...row, type: "webhook", holder: null }, { ...call, type: "webhook" }))).toBeUndefined();
  });
});

test("acks name linked streams, move no cursor back and stop at the tail", () => {
  const links = [{ key: "/v1/stream/a", explicit: true, ackedPos: 5, tail: 10, earliest: 0 }];
  expect(codeOf(() => checkAcks(links, new Map([["/v1/stream/a", 5]])))).toBeUndefined();
  expect(codeOf(() => checkAcks(links, new Map([["/v1/stream/a", 10]])))).toBeUndefined();
  expect(codeOf(() => checkAcks(links, new Map([["/v1/stream/a", 4]])))).toBe("INVALID_OFFSET");
  expect(codeOf(() => checkAcks(links, new Map([["/v1/stream/a", 11]])))).toBe("INVALID_OFFSET");
  expect(codeOf(() => checkAcks(links, new Map([["/v1/stream/b", 1]])))).toBe("INVALID_OFFSET");
});

describe("request bodies", () => {
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  test("a wake call: ids, generation, done, and acks folded to the furthest offset per stream", () => {
    const c = parseWakeCall(json({
      wake_id: "w_1", generation: 2, done: true,
      acks: [{ stream: "a", offset: "0000000000000000_0000000000000003" }, { path: "/a/", offset: "0000000000000000_0000000000000001" }],
    }), true, 1024);
    expect(c).toEqual({ generation: 2, wakeId: "w_1", done: true, acks: new Map([["/v1/stream/a", 3]]) });
    for (const bad of [{}, { wake_id: "w 1", generation: 1 }, { wake_id: "w", generation: -1 }, { wake_id: "w", generation: 1, done: "yes" },
      { wake_id: "w", generation: 1, acks: {} }, { wake_id: "w", generation: 1, acks: [{ stream: "a", offset: "-1" }] }]) {
      expect(codeOf(() => parseWakeCall(json(bad), true, 1024))).toBe("INVALID_REQUEST");
    }
    // A release takes no acks.
    expect(codeOf(() => parseWakeCall(json({ wake_id: "w", generation: 1, acks: [] }), false, 1024))).toBe("INVALID_REQUEST");
  });
  test("claims, added and removed streams", () => {
    expect(parseClaimWorker(json({ worker: "w1" }))).toBe("w1");
    expect(codeOf(() => parseClaimWorker(json({ worker: "" })))).toBe("INVALID_REQUEST");
    expect(codeOf(() => parseClaimWorker(json({ worker: "a\nb" })))).toBe("INVALID_REQUEST");
    expect(parseAddStreams(json({ streams: ["b", "/a"] }), 1024)).toEqual(["a", "b"]);
    expect(codeOf(() => parseAddStreams(json({ streams: [] }), 1024))).toBe("INVALID_REQUEST");
    expect(codeOf(() => parseAddStreams(json({ streams: ["a"], more: 1 }), 1024))).toBe("INVALID_REQUEST");
    expect(parseRemovedStream("a%2Fb", 1024)).toBe("/v1/stream/a/b");
    expect(codeOf(() => parseRemovedStream("%E0%A4%A", 1024))).toBe("INVALID_REQUEST");
  });
  test("the path limit is MAX_PATH_BYTES over the whole stream key", () => {
    const prefix = "/v1/stream/".length;
    expect(relativePath("x".repeat(64 - prefix), "p", 64)).toHaveLength(64 - prefix);
    expect(codeOf(() => relativePath("x".repeat(65 - prefix), "p", 64))).toBe("INVALID_REQUEST");
    expect(codeOf(() => relativePath("__ds/x", "p", 1024))).toBe("INVALID_REQUEST");
  });
});
