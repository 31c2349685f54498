// The one raw HTTP/1.1 client of the tests and benchmarks, on Bun's native sockets: one
// request at a time, keep-alive, Content-Length / chunked / empty bodies, body handed over
// as it arrives. Thousands of these cost far less than a general-purpose client (no pool
// caps them, and the load generator does not become the latency being measured), and the
// framing is exact: a chunked terminator tells a clean end from a reset. rawGet() wraps
// one connection as promises for tests.
import type { Socket } from "bun";

export interface Head {
  status: number;
  headers: Map<string, string>;
}

export interface ResponseHandler {
  onHead?(head: Head): void;
  /** Body bytes as they arrive; with `raw`, still chunk-framed (cheaper for endless SSE). */
  onBody?(chunk: Uint8Array): void;
  onEnd?(head: Head): void;
  raw?: boolean;
}

type State = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-crlf" | "trailer" | "until-close";

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder("latin1");

function indexOfCrlf(buf: Uint8Array, from = 0): number {
  for (let i = buf.indexOf(13, from); i >= 0 && i < buf.length - 1; i = buf.indexOf(13, i + 1)) {
    if (buf[i + 1] === 10) return i;
  }
  return -1;
}

function indexOfHeadEnd(buf: Uint8Array): number {
  for (let i = indexOfCrlf(buf); i >= 0; i = indexOfCrlf(buf, i + 2)) {
    if (buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export class Http1Connection {
  private socket?: Socket<undefined>;
  private pendingWrite: Uint8Array = EMPTY;
  private buf: Uint8Array = EMPTY;
  private state: State = "head";
  private remaining = 0;
  private head?: Head;
  private handler?: ResponseHandler;
  private closedCallbacks: ((err?: Error) => void)[] = [];
  private readonly ready: Promise<void>;
  closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.ready = Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, d) => this.onData(d),
        drain: () => this.flush(),
        close: () => this.onClose(),
        error: (_s, e) => this.onClose(e),
        connectError: (_s, e) => this.onClose(e),
      },
    }).then(
      (s) => {
        this.socket = s;
        s.setNoDelay(true);
        this.flush();
      },
      (e) => this.onClose(e),
    );
  }

  static fromUrl(url: string): Http1Connection {
    const u = new URL(url);
    return new Http1Connection(u.hostname, Number(u.port || 80));
  }

  /** Resolves once connected (or failed: see onClosed). */
  connected(): Promise<void> {
    return this.ready;
  }

  onClosed(cb: (err?: Error) => void): void {
    this.closedCallbacks.push(cb);
  }

  request(method: string, path: string, handler: ResponseHandler, headers: Record<string, string> = {}, body?: Uint8Array): void {
    this.handler = handler;
    this.state = "head";
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body) head += `Content-Length: ${body.byteLength}\r\n`;
    head += "\r\n";
    const bytes = Buffer.from(head, "latin1");
    this.pendingWrite = concat(this.pendingWrite, body ? concat(bytes, body) : bytes);
    this.flush();
  }

  close(): void {
    this.socket?.end();
    this.onClose();
  }

  private flush(): void {
    if (!this.socket || this.pendingWrite.length === 0) return;
    const n = this.socket.write(this.pendingWrite);
    this.pendingWrite = n >= this.pendingWrite.length ? EMPTY : this.pendingWrite.subarray(Math.max(0, n));
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // A body delimited by the connection closing ends here.
    if (this.state === "until-close" && this.head) this.handler?.onEnd?.(this.head);
    for (const cb of this.closedCallbacks) cb(err);
  }

  private onData(data: Uint8Array): void {
    // Endless raw bodies (SSE) skip all buffering: the common case costs one callback.
    if (this.state === "until-close") {
      this.handler?.onBody?.(data);
      return;
    }
    this.buf = this.buf.length ? concat(this.buf, data) : data;
    this.parse();
    // Whatever waits for more bytes must not point into a buffer the runtime may reuse.
    if (this.buf.length && this.buf.buffer === data.buffer) this.buf = this.buf.slice();
  }

  private parse(): void {
    for (;;) {
      if (this.state === "head") {
        const end = indexOfHeadEnd(this.buf);
        if (end < 0) return;
        const lines = latin1.decode(this.buf.subarray(0, end)).split("\r\n");
        this.buf = this.buf.subarray(end + 4);
        const status = Number(lines[0].split(" ")[1]);
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const i = line.indexOf(":");
          if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
        }
        this.head = { status, headers };
        this.handler?.onHead?.(this.head);
        if (status === 204 || status === 304 || (status >= 100 && status < 200)) this.finish();
        else if (this.handler?.raw) this.state = "until-close";
        else if (headers.get("transfer-encoding")?.includes("chunked")) this.state = "chunk-size";
        else if (headers.has("content-length")) {
          this.remaining = Number(headers.get("content-length"));
          this.state = "length";
          if (this.remaining === 0) this.finish();
        } else this.state = "until-close";
        continue;
      }
      if (this.state === "until-close") {
        if (this.buf.length) this.handler?.onBody?.(this.buf);
        this.buf = EMPTY;
        return;
      }
      if (this.state === "length" || this.state === "chunk-data") {
        if (this.buf.length === 0) return;
        const take = Math.min(this.remaining, this.buf.length);
        this.handler?.onBody?.(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        if (this.state === "length") this.finish();
        else this.state = "chunk-crlf";
        continue;
      }
      // chunk-size, chunk-crlf and trailer lines
      const eol = indexOfCrlf(this.buf);
      if (eol < 0) return;
      const line = latin1.decode(this.buf.subarray(0, eol));
      this.buf = this.buf.subarray(eol + 2);
      if (this.state === "chunk-crlf") this.state = "chunk-size";
      else if (this.state === "chunk-size") {
        this.remaining = parseInt(line, 16);
        this.state = this.remaining === 0 ? "trailer" : "chunk-data";
      } else if (line === "") this.finish();
    }
  }

  private finish(): void {
    const head = this.head!;
    this.state = "head";
    this.head = undefined;
    this.handler?.onEnd?.(head);
  }
}

export interface RawResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The whole message arrived: content-length reached, or the chunked terminator (0 CRLF CRLF). */
  complete: boolean;
  /** Socket error before the message was complete (e.g. ECONNRESET). */
  error?: string;
  /** performance.now() when the message completed (or the socket closed, if it never did). */
  endedAt: number;
}

export interface RawRequest {
  /** Resolves when the response head has been parsed. */
  head: Promise<{ status: number; headers: Record<string, string> }>;
  /** Resolves when the message completed or the socket closed; never rejects. */
  done: Promise<RawResult>;
  /** The socket is connected and the request written. */
  sent: Promise<void>;
  /** done has resolved. */
  isDone(): boolean;
  destroy(): void;
}

/** One GET on a fresh connection (Connection: close); body text handed to onBody as it arrives. */
export function rawGet(port: number, path: string, onBody?: (text: string, at: number) => void): RawRequest {
  const conn = new Http1Connection("127.0.0.1", port);
  const decoder = new TextDecoder();
  let status = 0;
  let headers: Record<string, string> | undefined;
  let body = "";
  let complete = false;
  let error: string | undefined;
  let settled = false;
  let resolveHead!: (h: { status: number; headers: Record<string, string> }) => void;
  let rejectHead!: (e: Error) => void;
  let resolveDone!: (r: RawResult) => void;
  const head = new Promise<{ status: number; headers: Record<string, string> }>((res, rej) => {
    resolveHead = res;
    rejectHead = rej;
  });
  head.catch(() => {});
  const done = new Promise<RawResult>((r) => (resolveDone = r));
  const finish = () => {
    if (settled) return;
    settled = true;
    if (!headers) rejectHead(new Error(error ?? "connection closed before the response head"));
    resolveDone({ status, headers: headers ?? {}, body, complete, error, endedAt: performance.now() });
  };
  conn.onClosed((err) => {
    if (err && !complete) error = (err as Error & { code?: string }).code ?? err.message;
    finish();
  });
  conn.request(
    "GET",
    path,
    {
      onHead: (h) => {
        status = h.status;
        headers = Object.fromEntries(h.headers);
        resolveHead({ status, headers });
      },
      onBody: (chunk) => {
        if (chunk.byteLength === 0) return;
        const text = decoder.decode(chunk, { stream: true });
        body += text;
        onBody?.(text, performance.now());
      },
      onEnd: () => {
        complete = true;
        finish();
        conn.close();
      },
    },
    { Accept: "*/*", Connection: "close" },
  );
  const sent = conn.connected();
  return { head, done, sent, isDone: () => settled, destroy: () => conn.close() };
}
