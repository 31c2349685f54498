// The fan-out floor: a minimal in-memory broadcaster in Bun, NOT a protocol server (no
// validation, offsets are plain byte counts, nothing is stored durably). It does the
// least any server must do per delivery (one socket write per SSE reader, one response
// per long-poll) so the fan-out scenario can show what this machine and these clients
// allow at all. Usage: bun bench/servers/floor.ts <port>
interface Sink {
  write(chunk: string | Uint8Array): void;
  flush(): void;
}

interface Stream {
  chunks: { start: number; data: Uint8Array }[];
  tail: number;
  sse: Set<Sink>;
  polls: Set<() => void>;
}

const streams = new Map<string, Stream>();
const text = new TextDecoder();

function since(s: Stream, from: number): Uint8Array {
  return Buffer.concat(s.chunks.filter((c) => c.start >= from).map((c) => c.data));
}

const control = (s: Stream) => `event: control\ndata:{"streamNextOffset":"${s.tail}","upToDate":true}\n\n`;

const server = Bun.serve({
  port: Number(process.argv[2]),
  hostname: "127.0.0.1",
  idleTimeout: 0,
  async fetch(req) {
    const url = new URL(req.url);
    const path = url.pathname;
    if (req.method === "PUT") {
      if (!streams.has(path)) streams.set(path, { chunks: [], tail: 0, sse: new Set(), polls: new Set() });
      return new Response(null, { status: 201 });
    }
    const s = streams.get(path);
    if (!s) return new Response("not found", { status: 404 });
    if (req.method === "POST") {
      const data = new Uint8Array(await req.arrayBuffer());
      s.chunks.push({ start: s.tail, data });
      s.tail += data.byteLength;
      // Strings are not joined with the control event: the same write count as a real server.
      const event = `event: data\ndata:${text.decode(data)}\n\n${control(s)}`;
      for (const sink of s.sse) {
        sink.write(event);
        sink.flush();
      }
      const polls = [...s.polls];
      s.polls.clear();
      for (const wake of polls) wake();
      return new Response(null, { status: 204, headers: { "Stream-Next-Offset": String(s.tail) } });
    }
    const offset = url.searchParams.get("offset");
    const from = offset === "now" || offset === null ? s.tail : offset === "-1" ? 0 : Number(offset);
    if (url.searchParams.get("live") === "sse") {
      let sink: Sink | undefined;
      const body = new ReadableStream({
        type: "direct",
        async pull(c: Sink) {
          sink = c;
          c.write(control(s));
          c.flush();
          s.sse.add(c);
          await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
          s.sse.delete(c);
        },
        cancel() {
          if (sink) s.sse.delete(sink);
        },
      } as unknown as UnderlyingDefaultSource<Uint8Array>);
      return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
    }
    if (from >= s.tail && url.searchParams.get("live") === "long-poll") {
      await new Promise<void>((resolve) => s.polls.add(resolve));
    }
    return new Response(since(s, from) as BodyInit, { headers: { "Stream-Next-Offset": String(s.tail), "Stream-Up-To-Date": "true" } });
  },
});
console.log(`reference server (floor) on ${server.url}`);
