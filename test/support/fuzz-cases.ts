// Seeded generators of malformed requests for the fuzz test. Each case is exact bytes plus
// what a correct server owes it: well-formed HTTP must be answered (with any status < 500);
// broken HTTP may be answered 4xx or have its connection closed. Requests that would
// legitimately change data never target the canary streams: those only ever receive
// requests that must be refused (wrong content type, invalid JSON, cut-off bodies), so the
// canaries must read back unchanged whatever the server does with the rest.

export type Rng = () => number;

export function rng(seed: number): Rng {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];
const enc = new TextEncoder();

export const CANARY_BIN = "canary-bin";
export const CANARY_JSON = "canary-json";
export const FUZZ_STREAMS = 12;

export interface FuzzCase {
  kind: string;
  /** Bytes to send; a number is a pause in ms (a slow client). */
  segments: (Uint8Array | number)[];
  /** One entry per request sent whose answer is owed (empty: none is owed). */
  methods: string[];
  /** Well-formed: every request in `methods` must be answered. */
  wellFormed: boolean;
  end: "wait" | "half-close" | "destroy";
  /** Keep-alive: send each request only after the previous answer. */
  awaitEach?: boolean;
  /** Pipelined appends to a fresh stream: what each would append, in request order. */
  pipeline?: { stream: string; appends: { index: number; marker: string }[] };
  /** A stream that must exist (created with this content type) before the case runs. */
  setup?: { stream: string; contentType: string };
}

// Values for every protocol header: plausible, boundary and hostile (all legal header bytes).
const NUMBERS = ["0", "1", "-1", "01", "+1", "1.5", "1e3", " 7", "9223372036854", "9223372036854775807", "9223372036854775808", "99999999999999999999999", "0x10", "NaN", "", "a", "1,2"];
const DATES = ["2030-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "1970-01-01T00:00:00Z", "yesterday", "2030-01-01", "2030-01-01T00:00:00+99:99", "Tue, 01 Jan 2030 00:00:00 GMT", "-001000-01-01T00:00:00Z"];
const OFFSETS = ["-1", "now", "0", "0000000000000000_0000000000000000", "0_0", "99999999999999999999_99999999999999999999", "-2", "abc", "%00", "1_", "_1", "0000000000000001_0000000000000000", "..", " ", "%FF%FE", "1e309"];
const TYPES = ["application/json", "application/octet-stream", "text/plain", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;;", "", "*/*", "multipart/form-data; boundary=x", "application/x-ndjson", "text/event-stream", "application/json; charset=latin1"];
const IDS = ["p", "", " ", "ü", "a".repeat(300), "a\tb", "x,y", '"q"'];

const HEADER_VALUES: Record<string, readonly string[]> = {
  "Stream-TTL": NUMBERS,
  "Stream-Expires-At": DATES,
  "Stream-Seq": ["1", "a", "", "00000000000000000001", "z".repeat(200), "\u00ff", "0", "-1"],
  "Producer-Id": IDS,
  "Producer-Epoch": NUMBERS,
  "Producer-Seq": NUMBERS,
  "Stream-Forked-From": ["/v1/stream/fz-1", "fz-1", "/v1/stream/canary-bin", "/v1/stream/../canary-json", "/v1/stream/nope", "", "http://x/v1/stream/fz-2", "%2F%2F", "/v1/stream/fz-1?x"],
  "Stream-Fork-Offset": OFFSETS,
  "Stream-Fork-Sub-Offset": NUMBERS,
  "Content-Type": TYPES,
  "Stream-Closed": ["true", "TRUE", "false", "1", "", "yes", "true, true"],
  "If-None-Match": ['"x"', "*", "", 'W/"1"', '"0_0"', "garbage", '"', '"a", "b"'],
};

function headerValue(r: Rng, name: string): string {
  const values = HEADER_VALUES[name];
  const v = pick(r, values);
  // Sometimes mutate: truncate, repeat, or splice in printable junk.
  switch (int(r, 6)) {
    case 0:
      return v.slice(0, int(r, v.length + 1));
    case 1:
      return v + pick(r, ["", "0", " ", "x", "\t", ";", "%"]) + v;
    case 2:
      return v.replace(/./, String.fromCharCode(0x21 + int(r, 94)));
    default:
      return v;
  }
}

function latin1(s: string): Uint8Array {
  // Header values go out byte for byte (obs-text included), never UTF-8 re-encoded.
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export function request(method: string, target: string, headers: [string, string][], body?: Uint8Array, opts: { close?: boolean; version?: string } = {}): Uint8Array {
  const lines = [`${method} ${target} HTTP/${opts.version ?? "1.1"}`, "Host: 127.0.0.1"];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  if (body && !headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k))) lines.push(`Content-Length: ${body.length}`);
  if (opts.close ?? true) lines.push("Connection: close");
  return concat(latin1(lines.join("\r\n") + "\r\n\r\n"), body ?? new Uint8Array(0));
}

const fuzzStream = (r: Rng) => `/v1/stream/fz-${int(r, FUZZ_STREAMS)}`;
const isJsonStream = (path: string) => /fz-\d*[02468]$/.test(path);

function randomBytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

function badJson(r: Rng): string {
  const depth = pick(r, [1, 100, 5_000, 60_000]);
  return pick(r, [
    "{", "[1,", '{"a":', "[1 2]", "nul", "'x'", '"\\u12"', "[" + "1,".repeat(int(r, 50)), "{}{", "[]]", "\u0000", "NaN",
    "[".repeat(depth), "[".repeat(depth) + "]".repeat(depth - 1), '{"a":'.repeat(depth) + "1" + "}".repeat(depth - 1) + ",",
  ]);
}

function anyJson(r: Rng): string {
  const depth = pick(r, [1, 10, 50_000]);
  return pick(r, ["[]", "{}", "[1,2,3]", '"s"', "null", "[[[]]]", '{"a":[1,{"b":null}]}', "[".repeat(depth) + "]".repeat(depth), "1e999", '"\\ud800"', badJson(r)]);
}

/** Paths: percent-encodings, dots, unicode, NUL, long; `safe` keeps them inside fz- names. */
function weirdPath(r: Rng, safe: boolean): string {
  const pieces = ["%2F", "%2e%2e", "..", ".", "%00", "%ZZ", "%", "%C3%A9", "%F0%9F%98%80", "%FF", "a%20b", "+", "~", ";x", "x?y", "#frag", "%25", "//", "%E2%80%AE", "%5C", "\\"];
  let name = `fz-${int(r, FUZZ_STREAMS)}`;
  for (let i = int(r, 4); i > 0; i--) name += (r() < 0.5 ? "/" : "") + pick(r, pieces);
  if (r() < 0.05) name += "x".repeat(pick(r, [300, 2_000, 7_000]));
  const whole = pick(r, [`/v1/stream/${name}`, `/v1/stream/${name}`, `/v1/stream/${name}`, "/v1/stream", "/v1/stream/", "/v1/streamx/fz-1", "//v1/stream/fz-1", "/v1//stream/fz-1", "/V1/STREAM/fz-1", "*", "/", "/healthz/..", "/v1/stream/%2e%2e/%2e%2e/healthz"]);
  if (!safe) return whole;
  // Destructive methods must never resolve to a canary: no climbing dot segments.
  return `/v1/stream/${name.replace(/(^|\/)(\.|%2e)+(?=\/|$)/gi, "$1dot").replace(/#/g, "%23")}`;
}

function query(r: Rng): string {
  const parts: string[] = [];
  for (let i = int(r, 4); i > 0; i--) {
    const k = pick(r, ["offset", "offset", "live", "cursor", "x", "offset[]", "", "%6Fffset"]);
    const v = k.startsWith("live") ? pick(r, ["long-poll", "sse", "LONG-POLL", "", "ws", "sse%00"]) : pick(r, OFFSETS);
    parts.push(r() < 0.1 ? k : `${k}=${v}`);
  }
  // A raw space would end the request target (invalid HTTP, covered by badHttp): encode it.
  return (parts.length ? `?${parts.join("&")}` : pick(r, ["", "?", "??", "?&&"])).replaceAll(" ", "%20");
}

function headerFuzz(r: Rng): FuzzCase {
  const method = pick(r, ["PUT", "POST", "GET", "HEAD", "DELETE", "OPTIONS", "PATCH", "POST", "PUT"]);
  const canary = r() < 0.25 && method !== "DELETE";
  const target = canary ? `/v1/stream/${pick(r, [CANARY_BIN, CANARY_JSON])}` : fuzzStream(r);
  const names = Object.keys(HEADER_VALUES);
  const headers: [string, string][] = [];
  for (let i = 1 + int(r, 4); i > 0; i--) {
    const name = pick(r, names);
    headers.push([name, headerValue(r, name)]);
  }
  let body: Uint8Array | undefined;
  if (canary && (method === "POST" || method === "PUT")) {
    // Must be refused: no close, no body on PUT, a content type or a body the canary cannot take.
    const h = headers.filter(([k]) => k !== "Stream-Closed" && k !== "Content-Type");
    if (method === "POST" && target.endsWith(CANARY_BIN)) {
      h.push(["Content-Type", "text/plain"]);
      body = randomBytes(r, 1 + int(r, 64));
    } else if (method === "POST") {
      h.push(["Content-Type", "application/json"]);
      body = enc.encode(badJson(r));
    } else h.push(["Content-Type", "application/x-canary-mismatch"]);
    return { kind: `canary ${method}`, segments: [request(method, target + (r() < 0.3 ? query(r) : ""), h, body)], methods: [method], wellFormed: true, end: "wait" };
  }
  if (method === "POST" || (method === "PUT" && r() < 0.3)) body = r() < 0.5 ? enc.encode(anyJson(r)) : randomBytes(r, int(r, 200));
  const path = method === "DELETE" || method === "PUT" || method === "POST" ? target : target + (r() < 0.5 ? query(r) : "");
  return { kind: `headers ${method}`, segments: [request(method, path, headers, body)], methods: [method], wellFormed: true, end: "wait" };
}

function readFuzz(r: Rng): FuzzCase {
  const method = pick(r, ["GET", "GET", "HEAD"]);
  const stream = r() < 0.3 ? `/v1/stream/${pick(r, [CANARY_BIN, CANARY_JSON])}` : fuzzStream(r);
  const headers: [string, string][] = r() < 0.3 ? [["If-None-Match", headerValue(r, "If-None-Match")]] : [];
  return { kind: `read ${method}`, segments: [request(method, stream + query(r), headers)], methods: [method], wellFormed: true, end: "wait" };
}

function pathFuzz(r: Rng): FuzzCase {
  const method = pick(r, ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]);
  const destructive = method === "PUT" || method === "POST" || method === "DELETE";
  const path = weirdPath(r, destructive);
  const headers: [string, string][] = method === "PUT" || method === "POST" ? [["Content-Type", pick(r, TYPES)]] : [];
  const body = method === "POST" ? randomBytes(r, 1 + int(r, 32)) : undefined;
  // Bun and Deno may refuse an oversized request line by closing: only shorter ones are owed an answer.
  const owed = path.length < 4_000;
  return { kind: `path ${method}`, segments: [request(method, path, headers, body)], methods: [method], wellFormed: owed, end: "wait" };
}

function bodyFuzz(r: Rng): FuzzCase {
  const stream = fuzzStream(r);
  const json = isJsonStream(stream);
  const type = json ? "application/json" : "application/octet-stream";
  switch (int(r, 5)) {
    case 0: // invalid or deep JSON
      return { kind: "body json", segments: [request("POST", stream, [["Content-Type", "application/json"]], enc.encode(r() < 0.7 ? badJson(r) : anyJson(r)))], methods: ["POST"], wellFormed: true, end: "wait" };
    case 1: { // huge declared length, then nothing (413 at once, or a wait we cut short)
      const head = request("POST", stream, [["Content-Type", type], ["Content-Length", pick(r, ["99999999999", "1000000000000000", "67108865", "18446744073709551616"])]]);
      return { kind: "body huge length", segments: [head], methods: [], wellFormed: false, end: pick(r, ["wait", "destroy"]) };
    }
    case 2: { // chunked with bad framing
      const frames = pick(r, ["zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcdef\r\n0\r\n\r\n", "5\r\nab", "-1\r\nx\r\n0\r\n\r\n", "3\r\nabc0\r\n\r\n", "FFFFFFFFFFFFFFFFFF\r\nx\r\n", "3;ext=\"\r\nabc\r\n0\r\n\r\n", "0\r\nTrailer: x\r\n"]);
      const extra: [string, string][] = r() < 0.3 ? [["Content-Length", "3"]] : [];
      const bytes = request("POST", stream, [["Content-Type", type], ["Transfer-Encoding", pick(r, ["chunked", "chunked, chunked", "gzip, chunked", "Chunked"])], ...extra], enc.encode(frames));
      return { kind: "body bad chunked", segments: [bytes], methods: [], wellFormed: false, end: "half-close" };
    }
    case 3: { // well-formed chunked append, sent slowly
      const data = json ? anyJson(r) : "abc";
      const bytes = request("POST", stream, [["Content-Type", type], ["Transfer-Encoding", "chunked"]], enc.encode(`${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`));
      const cut = int(r, bytes.length);
      return { kind: "body chunked slow", segments: [bytes.subarray(0, cut), 50, bytes.subarray(cut)], methods: ["POST"], wellFormed: true, end: "wait" };
    }
    default: // a body cut off mid-way to a canary, which must not store any part of it
      return cutOffCanary(r);
  }
}

function cutOffCanary(r: Rng): FuzzCase {
  const bin = r() < 0.5;
  const body = bin ? randomBytes(r, 2 + int(r, 4000)) : enc.encode(JSON.stringify(Array.from({ length: 1 + int(r, 50) }, (_, i) => ({ i }))));
  const bytes = request("POST", `/v1/stream/${bin ? CANARY_BIN : CANARY_JSON}`, [["Content-Type", bin ? "application/octet-stream" : "application/json"]], body);
  const headLen = bytes.length - body.length;
  const cut = headLen + int(r, body.length); // somewhere inside the body, never all of it
  return { kind: "canary cut-off body", segments: [bytes.subarray(0, cut), int(r, 30)], methods: [], wellFormed: false, end: pick(r, ["destroy", "half-close"]) };
}

function truncated(r: Rng): FuzzCase {
  // A valid append to a canary, cut anywhere (headers included): nothing may be stored.
  const c = cutOffCanary(r);
  const whole = c.segments[0] as Uint8Array;
  return { ...c, kind: "truncated", segments: [whole.subarray(0, int(r, whole.length))] };
}

function pipelined(r: Rng, id: string): FuzzCase {
  const stream = `/v1/stream/fz-pipe-${id}`;
  const segments: Uint8Array[] = [];
  const methods: string[] = [];
  const appends: { index: number; marker: string }[] = [];
  const n = 2 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    const kind = i === 0 ? "POST" : pick(r, ["POST", "GET", "HEAD", "POST"]);
    if (kind === "POST") {
      const marker = `<${id}.${i}>`;
      appends.push({ index: i, marker });
      segments.push(request("POST", stream, [["Content-Type", "application/octet-stream"]], enc.encode(marker), { close: last }));
    } else segments.push(request(kind, `${stream}${kind === "GET" ? "?offset=-1" : ""}`, [], undefined, { close: last }));
    methods.push(kind);
  }
  const together = r() < 0.5;
  return {
    kind: "pipelined",
    segments: together ? [concat(...segments)] : segments,
    methods,
    wellFormed: true,
    end: "wait",
    pipeline: { stream, appends },
    setup: { stream, contentType: "application/octet-stream" },
  };
}

function keepAlive(r: Rng): FuzzCase {
  // Several requests on one connection, each sent once the previous one was answered.
  const segments: (Uint8Array | number)[] = [];
  const methods: string[] = [];
  const n = 2 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const m = pick(r, ["GET", "HEAD", "OPTIONS"]);
    segments.push(request(m, fuzzStream(r) + (m === "GET" ? "?offset=-1" : ""), [], undefined, { close: i === n - 1 }));
    methods.push(m);
  }
  return { kind: "keep-alive", segments, methods, wellFormed: true, end: "wait", awaitEach: true };
}

const BAD_HTTP: readonly string[] = [
  "GET\r\n\r\n", "GET /v1/stream/fz-1\r\n\r\n", "GET /v1/stream/fz-1?offset= -1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /v1/stream/fz-1 HTTP/9.9\r\nHost: x\r\n\r\n", "GET  /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\n\r\n",
  "get /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "FOO /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  "Post /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", "GET /v1/stream/fz-1 HTTP/1.0\r\n\r\n",
  "GET /v1/stream/fz-1?offset=-1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\r\nConnection: close\r\n\r\n",
  "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
  "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\n folded: 1\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\nHost: x\n\n", "\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n",
  "POST /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", "POST /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\nabc",
  "POST /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n",
  "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "GET /v1/stream/fz-\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n", "GET http://evil/v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\n\r\n",
  "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n",
  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
  "POST /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nContent-Type: application/octet-stream\r\n\r\nabc",
];

function badHttp(r: Rng): FuzzCase {
  let text: string;
  const roll = int(r, 10);
  if (roll < 6) text = pick(r, BAD_HTTP);
  else if (roll < 7) text = `GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\n${Array.from({ length: pick(r, [200, 2_000]) }, (_, i) => `X-${i}: ${i}`).join("\r\n")}\r\n\r\n`;
  else if (roll < 8) text = `GET /v1/stream/fz-1 HTTP/1.1\r\nHost: x\r\nX-Big: ${"v".repeat(pick(r, [9_000, 100_000]))}\r\n\r\n`;
  else return { kind: "bad http garbage", segments: [randomBytes(r, 1 + int(r, 300))], methods: [], wellFormed: false, end: pick(r, ["half-close", "destroy"]) };
  return { kind: "bad http", segments: [latin1(text)], methods: [], wellFormed: false, end: "half-close" };
}

/** One case of every kind, by weight. `id` names per-case streams (pipelining). */
export function fuzzCase(r: Rng, id: string): FuzzCase {
  const x = r();
  if (x < 0.28) return headerFuzz(r);
  if (x < 0.40) return readFuzz(r);
  if (x < 0.52) return pathFuzz(r);
  if (x < 0.66) return bodyFuzz(r);
  if (x < 0.72) return truncated(r);
  if (x < 0.80) return pipelined(r, id);
  if (x < 0.86) return keepAlive(r);
  return badHttp(r);
}
