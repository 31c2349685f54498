// Cold start, run as its own process against a server that has just started:
//   bun bench/clients/coldstart.ts <baseUrl> <stream> <messages> <perMs> [<warmUpUrl>]
// Creates a JSON stream, opens one SSE and one long-poll reader on it, then offers
// <perMs> messages every millisecond through the official IdempotentProducer (lingerMs 2)
// until <messages> were sent. Each message carries its send time; readers subtract it from
// their receive time. Prints one JSON line: p50/p99 of the first 2,000 messages (cold) and
// of the last 2,000 (warm), for SSE and long-poll, the producer's own errors, and the SSE p50
// of each 500 messages in order (series), which shows where a cold start's delay comes from.
// With <warmUpUrl> (another server, already running), this process first runs the same load
// against that server, so its own start-up (module loading, JIT) is behind it when the server
// under test gets its first request: a warm client against a cold server.
import { DurableStream, IdempotentProducer } from "@durable-streams/client";

const [base, name, total, perMs, warmUpBase] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5]), process.argv[6]];
const WINDOW = 2_000;
const SERIES = 500;
const now = () => performance.timeOrigin + performance.now();

type Message = { i: number; t: number };
type Kind = "sse" | "longPoll";

async function run(url: string) {
  const latencies = { sse: new Float64Array(total).fill(NaN), longPoll: new Float64Array(total).fill(NaN) };
  const received = { sse: 0, longPoll: 0 };
  const done = new AbortController();

  function record(kind: Kind, messages: Message[]) {
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
  const offeredPerSecond = Math.round((total / (now() - started)) * 1000);
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
  const series: number[] = [];
  for (let from = 0; from < total; from += SERIES) series.push(percentile(latencies.sse.subarray(from, from + SERIES), 0.5));
  return { sent: total, offeredPerSecond, received, errors, sse: summary(latencies.sse), longPoll: summary(latencies.longPoll), series };
}

function percentile(values: Float64Array, q: number): number {
  const sorted = Array.from(values).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100 : NaN;
}

const clientWarmUp = warmUpBase ? await run(`${warmUpBase}/v1/stream/${name}-client-warm-up`) : undefined;
const report = await run(`${base}/v1/stream/${name}`);
console.log(JSON.stringify({ ...report, clientWarmUp: clientWarmUp && { sse: clientWarmUp.sse, series: clientWarmUp.series } }));
process.exit(0);
