// The HTTP surface through a real socket: bad input always gets a clear 4xx and leaves
// stored data untouched; compression, CORS and health behave.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { loadConfig } from "../../src/settings.ts";
import { fromMigratedDump } from "../support/backends.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { errorResponse } from "../../src/http/respond.ts";

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startServer(
    loadConfig({ PORT: "0", DATA_DIR: "memory://", MAX_BODY_BYTES: "4096", LONG_POLL_TIMEOUT_MS: "300", READ_CHUNK_BYTES: "65536" }),
    await fromMigratedDump(),
  );
  base = `${server.url}/v1/stream`;
}, 60_000);
afterAll(() => server.stop());

const put = (name: string, headers: Record<string, string> = {}, body?: string) =>
  fetch(`${base}/${name}`, { method: "PUT", headers, body });
const post = (name: string, headers: Record<string, string>, body?: BodyInit) =>
  fetch(`${base}/${name}`, { method: "POST", headers, body });
const read = (name: string, query = "offset=-1") => fetch(`${base}/${name}?${query}`);

async function snapshot(name: string) {
  const res = await read(name);
  return { body: await res.text(), offset: res.headers.get("stream-next-offset") };
}

describe("bad input gets a 4xx and changes nothing", () => {
  const name = "guarded";
  beforeAll(async () => {
    expect((await put(name, { "Content-Type": "text/plain" }, "kept")).status).toBe(201);
  });

  const cases: [string, () => Promise<Response>, number][] = [
    ["malformed Stream-TTL on create", () => put(name, { "Content-Type": "text/plain", "Stream-TTL": "1e3" }), 400],
    ["TTL with Expires-At", () => put(name, { "Stream-TTL": "5", "Stream-Expires-At": "2030-01-01T00:00:00Z" }), 400],
    ["bad Expires-At", () => put(name, { "Stream-Expires-At": "tomorrow" }), 400],
    ["re-create with another type", () => put(name, { "Content-Type": "application/json" }), 409],
    ["empty append", () => post(name, { "Content-Type": "text/plain" }), 400],
    ["append without Content-Type", () => post(name, {}, new Blob(["x"])), 400],
    ["append of another type", () => post(name, { "Content-Type": "application/json" }, "[1]"), 409],
    ["partial producer headers", () => post(name, { "Content-Type": "text/plain", "Producer-Id": "p" }, "x"), 400],
    ["non-numeric producer epoch", () => post(name, { "Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "x", "Producer-Seq": "0" }, "x"), 400],
    ["body over the limit", () => post(name, { "Content-Type": "text/plain" }, "x".repeat(5000)), 413],
    ["chunked body over the limit", () => post(name, { "Content-Type": "text/plain" }, new Blob(["y".repeat(8192)]).stream()), 413],
    ["malformed offset", () => read(name, "offset=abc"), 400],
    ["repeated offset", () => read(name, "offset=-1&offset=now"), 400],
    ["offset past the tail", () => read(name, "offset=9999999999999999_9999999999999999"), 400],
    ["unknown live mode", () => read(name, "offset=-1&live=websocket"), 400],
    ["live without offset", () => read(name, "live=sse"), 400],
    ["fork offset without a source", () => put("other", { "Stream-Fork-Offset": "0000000000000000_0000000000000000" }), 400],
    ["fork of a missing source", () => put("fork-x", { "Stream-Forked-From": "/v1/stream/nope" }), 404],
    ["malformed fork offset", () => put("fork-y", { "Stream-Forked-From": `/v1/stream/${name}`, "Stream-Fork-Offset": "zzz" }), 400],
    ["PATCH", () => fetch(`${base}/${name}`, { method: "PATCH", body: "x" }), 405],
    ["empty stream name", () => put("", { "Content-Type": "text/plain" }), 400],
    ["overlong stream path", () => put("x".repeat(1100), { "Content-Type": "text/plain" }), 414],
    ["subscription with an empty configuration", () => put("__ds/subscriptions/s1", { "Content-Type": "application/json" }, "{}"), 400],
    ["unknown control path under __ds", () => put("__ds/nothing-here", { "Content-Type": "text/plain" }, "x"), 404],
  ];

  for (const [label, send, status] of cases) {
    test(label, async () => {
      const before = await snapshot(name);
      const res = await send();
      expect(res.status).toBe(status);
      if (res.status !== 405) expect((await res.text()).length).toBeGreaterThan(0);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await snapshot(name)).toEqual(before);
    });
  }

  test("a JSON stream rejects invalid JSON and empty arrays, keeping its messages", async () => {
    expect((await put("json-guard", { "Content-Type": "application/json" }, '[{"a":1}]')).status).toBe(201);
    for (const body of ["{oops", "[]", '"\u0000'.slice(0, 1)]) {
      expect((await post("json-guard", { "Content-Type": "application/json" }, body)).status).toBe(400);
    }
    expect(await (await read("json-guard")).json()).toEqual([{ a: 1 }]);
  });

  test("a fork that inherits JSON mode validates and splits its initial body", async () => {
    await put("json-src", { "Content-Type": "application/json" }, "[1,2]");
    expect((await put("json-fork-bad", { "Stream-Forked-From": "/v1/stream/json-src" }, "{nope")).status).toBe(400);
    expect((await put("json-fork", { "Stream-Forked-From": "/v1/stream/json-src" }, "[3,4]")).status).toBe(201);
    expect(await (await read("json-fork")).json()).toEqual([1, 2, 3, 4]);
  });

  test("missing streams are 404 for every method", async () => {
    expect((await read("never")).status).toBe(404);
    expect((await fetch(`${base}/never`, { method: "HEAD" })).status).toBe(404);
    expect((await post("never", { "Content-Type": "text/plain" }, "x")).status).toBe(404);
    expect((await fetch(`${base}/never`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("error mapping", () => {
  test("an unreachable database is a 503 with Retry-After, other surprises a 500", async () => {
    const down = Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });
    const wrapped = Object.assign(new Error("Failed query"), { cause: Object.assign(new Error("terminating"), { code: "57P01" }) });
    for (const err of [down, wrapped]) {
      const res = errorResponse(err);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
    }
    expect(errorResponse(new TypeError("bug")).status).toBe(500);
    expect(errorResponse(Object.assign(new Error("unique"), { code: "23505" })).status).toBe(500);
  });
});

describe("HTTP behaviour", () => {
  test("gzip when the client accepts it, identity otherwise", async () => {
    const text = "durable ".repeat(2000);
    await put("zip", { "Content-Type": "text/plain" });
    for (let i = 0; i < 8; i++) await post("zip", { "Content-Type": "text/plain" }, text.slice(i * 2000, (i + 1) * 2000));
    const gz = await fetch(`${base}/zip?offset=-1`, { headers: { "Accept-Encoding": "gzip" }, decompress: false } as RequestInit);
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    const raw = new Uint8Array(await gz.arrayBuffer());
    expect(raw.byteLength).toBeLessThan(text.length / 10);
    expect(gunzipSync(raw).toString()).toBe(text);
    const plain = await fetch(`${base}/zip?offset=-1`, { headers: { "Accept-Encoding": "identity" } });
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(await plain.text()).toBe(text);
  });

  test("CORS preflight allows the protocol's headers", async () => {
    const res = await fetch(`${base}/anything`, {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "producer-id, if-none-match" },
    });
    expect(res.status).toBe(204);
    const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of ["producer-id", "producer-epoch", "producer-seq", "stream-closed", "if-none-match", "stream-forked-from"]) {
      expect(allowed).toContain(h);
    }
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("ETag changes when the stream closes; If-None-Match gives 304", async () => {
    await put("etag", { "Content-Type": "text/plain" }, "x");
    const first = await read("etag");
    const etag = first.headers.get("etag")!;
    expect((await fetch(`${base}/etag?offset=-1`, { headers: { "If-None-Match": etag } })).status).toBe(304);
    await post("etag", { "Stream-Closed": "true" });
    const closed = await read("etag");
    expect(closed.headers.get("etag")).not.toBe(etag);
    expect(closed.headers.get("stream-closed")).toBe("true");
  });

  test("long-poll times out with 204 and a cursor", async () => {
    await put("lp", { "Content-Type": "text/plain" });
    const started = Date.now();
    const res = await read("lp", "offset=now&live=long-poll");
    expect(res.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(res.headers.get("stream-up-to-date")).toBe("true");
    expect(res.headers.get("stream-cursor")).toMatch(/^\d+$/);
  });

  test("healthz reports the database and listener", async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, database: "pglite", listener: "connected" });
  });
});
