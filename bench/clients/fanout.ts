// Live fan-out load, run as its own process:
//   bun bench/clients/fanout.ts readers <sse|long-poll> <baseUrl> <stream> <count> [streams]
// (with streams > 1, reader i reads <stream><i % streams>; the idle scenario uses that)
//   bun bench/clients/fanout.ts writer <baseUrl> <stream> <perSecond> <warmupS> <seconds>
// The writer puts its send time (wall clock, µs) into every append as "T<µs>;"; readers
// subtract it from their receive time. Warm-up appends say "W" and are not counted.
// Readers print {"ready":n} once connected and a summary when stdin says "stop".
import { Http1Connection } from "../../test/support/http1.ts";

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
const [role, ...args] = process.argv.slice(2);

if (role === "writer") await writer(args[0], args[1], Number(args[2]), Number(args[3]), Number(args[4]));
else if (role === "readers") await readers(args[0] as "sse" | "long-poll", args[1], args[2], Number(args[3]), Number(args[4] ?? 1));
else throw new Error(`unknown role ${role}`);

async function writer(base: string, stream: string, perSecond: number, warmupS: number, seconds: number) {
  const conn = Http1Connection.fromUrl(base);
  const path = `/v1/stream/${stream}`;
  let sent = 0;
  let failed = 0;
  const end = Date.now() + (warmupS + seconds) * 1000;
  const warmEnd = Date.now() + warmupS * 1000;
  const interval = 1000 / perSecond;
  let next = performance.now();
  while (Date.now() < end) {
    const marker = Date.now() < warmEnd ? "W" : "T";
    const body = Buffer.from(`${marker}${Math.round(nowUs())};`.padEnd(100, "."));
    const status = await new Promise<number>((resolve) => {
      conn.request("POST", path, { onEnd: (h) => resolve(h.status) }, { "Content-Type": "text/plain" }, body);
    });
    if (status >= 300) failed++;
    else if (marker === "T") sent++;
    // Fixed schedule, not fixed gaps: a slow append does not shift the ones after it.
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  conn.close();
  console.log(JSON.stringify({ sent, failed }));
}

async function readers(mode: "sse" | "long-poll", base: string, stream: string, count: number, streams: number) {
  const pathOf = (i: number) => `/v1/stream/${streams > 1 ? `${stream}${i % streams}` : stream}`;
  const latencies: number[] = [];
  let connected = 0;
  let errors = 0;
  let reconnects = 0;
  let stopping = false;

  // Scans raw bytes for "T<µs>;" (no string decoding: this runs once per delivery per
  // reader). A marker split across two reads is carried over to the next one.
  const scanner = () => {
    let carry: Uint8Array | undefined;
    return (chunk: Uint8Array) => {
      const at = nowUs();
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = undefined;
      for (let i = buf.indexOf(0x54); i >= 0; i = buf.indexOf(0x54, i)) {
        let value = 0;
        let j = i + 1;
        while (j < buf.length && buf[j] >= 0x30 && buf[j] <= 0x39) value = value * 10 + buf[j++] - 0x30;
        if (j === buf.length) {
          if (j - i < 24) carry = buf.slice(i);
          break;
        }
        if (buf[j] === 0x3b && j - i > 13) latencies.push((at - value) / 1000);
        i = j;
      }
    };
  };

  const startSse = (path: string, offset: string, first: boolean) => {
    const conn = Http1Connection.fromUrl(base);
    const scan = scanner();
    conn.request("GET", `${path}?offset=${offset}&live=sse`, {
      raw: true,
      onHead: (h) => {
        if (h.status !== 200) errors++;
        else if (first) connected++;
      },
      onBody: scan,
    });
    // A server may end an SSE response (lifetime cap): come back at the tail.
    conn.onClosed(() => {
      if (stopping) return;
      reconnects++;
      setTimeout(() => startSse(path, "now", false), 10);
    });
  };

  const startLongPoll = (path: string) => {
    let conn = Http1Connection.fromUrl(base);
    let offset = "now";
    let cursor: string | undefined;
    let first = true;
    const poll = () => {
      if (stopping) return;
      const scan = scanner();
      const q = `${path}?offset=${offset}&live=long-poll${cursor ? `&cursor=${cursor}` : ""}`;
      conn.request("GET", q, {
        onBody: scan,
        onEnd: (h) => {
          if (h.status === 200 || h.status === 204) {
            offset = h.headers.get("stream-next-offset") ?? offset;
            cursor = h.headers.get("stream-cursor") ?? cursor;
            poll();
          } else {
            errors++;
            setTimeout(poll, 100);
          }
        },
      }, { Connection: "keep-alive" });
      if (first) {
        first = false;
        connected++;
      }
    };
    const reopen = () => {
      if (stopping) return;
      reconnects++;
      conn = Http1Connection.fromUrl(base);
      conn.onClosed(reopen);
      setTimeout(poll, 10);
    };
    conn.onClosed(reopen);
    poll();
  };

  // Open in batches so the server's accept queue is not flooded.
  for (let i = 0; i < count; i++) {
    if (mode === "sse") startSse(pathOf(i), "now", true);
    else startLongPoll(pathOf(i));
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = Date.now() + 120_000;
  while (connected + errors < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ ready: connected, errors }));

  for await (const line of console) {
    if (line.trim() === "stop") break;
  }
  stopping = true;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
  const r3 = (n: number) => Math.round(n * 1000) / 1000;
  console.log(JSON.stringify({
    mode, readers: count, connected, errors, reconnects, deliveries: latencies.length,
    p50: r3(q(0.5)), p90: r3(q(0.9)), p99: r3(q(0.99)), max: r3(latencies[latencies.length - 1] ?? NaN),
  }));
  process.exit(0);
}
