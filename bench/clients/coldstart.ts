// Cold start, run as its own process against a server that has just started:
//   bun bench/clients/coldstart.ts <baseUrl> <stream> <messages> <perMs>
// Creates a JSON stream, opens one SSE and one long-poll reader on it, then offers
// <perMs> messages every millisecond through the official IdempotentProducer (lingerMs 2)
// until <messages> were sent. Each message carries its send time; readers subtract it from
// their receive time. Prints one JSON line: p50/p99 of the first 2,000 messages (cold) and
// of the last 2,000 (warm), for SSE and long-poll, and the producer's own errors.
import { DurableStream, IdempotentProducer } from "@durable-streams/client";

const [base, name, total, perMs] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const WINDOW = 2_000;
const url = `${base}/v1/stream/${name}`;
const now = () => performance.timeOrigin + performance.now();

type Message = { i: number; t: number };
const latencies = { sse: new Float64Array(total).fill(NaN), longPoll: new Float64Array(total).fill(NaN) };
let received = { sse: 0, longPoll: 0 };
const done = new AbortController();

function record(kind: "sse" | "longPoll", messages: Message[]) {
  const at = now();
  for (const m of messages) {
    if (Number.isNaN(latencies[kind][m.i])) received[kind]++;
    latencies[kind][m.i] = at - m.t;
  }
}

async function sseReader(ready: () => void) {
  const res = await fetch(`${url}?offset=-1&live=sse`, { signal: done.signal });
  ready();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done: ended, value } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:") && event === "data") record("sse", JSON.parse(line.slice(5)) as Message[]);
      }
    }
  } catch {
    // aborted at the end
  }
}

async function longPollReader(ready: () => void) {
  let offset = "-1";
  let first = true;
  while (!done.signal.aborted) {
    try {
      const res = await fetch(`${url}?offset=${encodeURIComponent(offset)}${first ? "" : "&live=long-poll"}`, { signal: done.signal });
      if (first) ready();
      first = false;
      offset = res.headers.get("stream-next-offset") ?? offset;
      if (res.status === 200) record("longPoll", (await res.json()) as Message[]);
      else await res.arrayBuffer();
    } catch {
      return;
    }
  }
}

function percentile(values: Float64Array, q: number): number {
  const sorted = Array.from(values).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100 : NaN;
}

const stream = await DurableStream.create({ url, contentType: "application/json" });
await Promise.all([new Promise<void>((r) => void sseReader(r)), new Promise<void>((r) => void longPollReader(r))]);

let errors = 0;
const producer = new IdempotentProducer(stream, `cold-${process.pid}`, { lingerMs: 2, onError: () => void errors++ });
const started = now();
for (let i = 0; i < total; ) {
  for (let k = 0; k < perMs && i < total; k++, i++) producer.append(JSON.stringify({ i, t: now() }));
  await new Promise((r) => setTimeout(r, 1));
}
await producer.flush();
const deadline = Date.now() + 10_000;
while ((received.sse < total || received.longPoll < total) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
done.abort();

const window = (values: Float64Array, from: number) => values.subarray(from, from + WINDOW);
const summary = (values: Float64Array) => ({
  coldP50: percentile(window(values, 0), 0.5),
  coldP99: percentile(window(values, 0), 0.99),
  warmP50: percentile(window(values, total - WINDOW), 0.5),
  warmP99: percentile(window(values, total - WINDOW), 0.99),
});
console.log(
  JSON.stringify({
    sent: total,
    offeredPerSecond: Math.round((total / (now() - started)) * 1000),
    received,
    errors,
    sse: summary(latencies.sse),
    longPoll: summary(latencies.longPoll),
  }),
);
process.exit(0);
