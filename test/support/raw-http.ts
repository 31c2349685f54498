// HTTP/1.1 over a raw socket (node:net), for requests no HTTP client would send: exact bytes
// in, every response parsed out (several when pipelined), and whether the server closed the
// connection without answering.
import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

export interface Exchange {
  responses: RawResponse[];
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Neither all expected responses nor a close before the timeout. */
  timedOut: boolean;
  /** Bytes after the last complete response (a response cut off, or not HTTP). */
  leftover: number;
}

export interface ExchangeOptions {
  /** Methods of the requests sent, in order: one response each is awaited. */
  methods: string[];
  /** After sending: wait for answers, half-close our side first, or hang up at once. */
  end: "wait" | "half-close" | "destroy";
  timeoutMs: number;
  /** Keep-alive without pipelining: each request goes out only once the previous one was answered. */
  awaitEach?: boolean;
}

/** Parses as many complete responses as `buf` holds; `atEnd` when the connection is closed. */
export function parseResponses(buf: Buffer, methods: string[], atEnd: boolean): { responses: RawResponse[]; used: number } {
  const responses: RawResponse[] = [];
  let pos = 0;
  for (;;) {
    const headEnd = buf.indexOf("\r\n\r\n", pos);
    if (headEnd < 0) break;
    const lines = buf.subarray(pos, headEnd).toString("latin1").split("\r\n");
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0]);
    if (!m) break;
    const status = Number(m[1]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    let at = headEnd + 4;
    if (status >= 100 && status < 200) {
      pos = at; // interim response (100 Continue): the real one follows
      continue;
    }
    const method = methods[responses.length] ?? "GET";
    let body: Buffer;
    if (method === "HEAD" || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
      const parts: Buffer[] = [];
      let done = false;
      for (;;) {
        const eol = buf.indexOf("\r\n", at);
        if (eol < 0) break;
        const size = parseInt(buf.subarray(at, eol).toString("latin1"), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          const trailerEnd = buf.indexOf("\r\n", eol + 2);
          if (trailerEnd < 0) break;
          at = trailerEnd + 2;
          done = true;
          break;
        }
        if (buf.length < eol + 2 + size + 2) break;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      if (!done) break;
      body = Buffer.concat(parts);
    } else if (headers.has("content-length")) {
      const n = Number(headers.get("content-length"));
      if (buf.length < at + n) break;
      body = buf.subarray(at, at + n);
      at += n;
    } else {
      if (!atEnd) break; // delimited by the connection's close
      body = buf.subarray(at);
      at = buf.length;
    }
    responses.push({ status, headers, body });
    pos = at;
  }
  return { responses, used: pos };
}

/** Sends `segments` (bytes, or a number = pause in ms) on a fresh connection and collects answers. */
export function exchange(port: number, segments: (Uint8Array | number)[], opts: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let settled = false;
    let closed = false;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      progress();
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      const { responses, used } = parseResponses(buf, opts.methods, closed);
      socket.destroy();
      resolve({ responses, closed, timedOut, leftover: buf.length - used });
    };
    const timer = setTimeout(() => finish(true), opts.timeoutMs);
    let answered = 0;
    let progress = () => {};
    socket.on("data", (b: Buffer) => {
      chunks.push(b);
      answered = parseResponses(Buffer.concat(chunks), opts.methods, false).responses.length;
      progress();
      if (opts.methods.length > 0 && answered >= opts.methods.length) finish(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      progress();
      finish(false);
    });
    socket.on("connect", async () => {
      let sent = 0;
      for (const s of segments) {
        if (typeof s === "number") await new Promise((r) => setTimeout(r, s));
        else {
          if (opts.awaitEach) {
            while (answered < sent && !settled) await new Promise<void>((r) => (progress = r));
          }
          if (socket.destroyed || settled) break;
          socket.write(s);
          sent++;
        }
      }
      if (opts.end === "destroy") {
        // Give the bytes a moment to leave, then hang up as a client that went away would.
        setTimeout(() => {
          closed = true;
          finish(false);
        }, 20);
      } else if (opts.end === "half-close") socket.end();
    });
  });
}
