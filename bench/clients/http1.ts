// A minimal HTTP/1.1 client connection over a raw socket: one request at a time,
// keep-alive, Content-Length / chunked / empty bodies, body handed over as it arrives.
// Thousands of these cost far less than a general-purpose client, so the load generator
// does not become the latency being measured.
import { connect, type Socket } from "node:net";

export interface Head {
  status: number;
  headers: Map<string, string>;
}

export interface ResponseHandler {
  onHead?(head: Head): void;
  onBody?(chunk: Buffer): void;
  onEnd?(head: Head): void;
}

type State = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-crlf" | "trailer" | "until-close";

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

export class Http1Connection {
  private readonly socket: Socket;
  private buf = Buffer.alloc(0);
  private state: State = "head";
  private remaining = 0;
  private head?: Head;
  private handler?: ResponseHandler;
  private closedCallbacks: ((err?: Error) => void)[] = [];
  closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (d) => this.onData(d));
    this.socket.on("error", (e) => this.onClose(e));
    this.socket.on("close", () => this.onClose());
  }

  static fromUrl(url: string): Http1Connection {
    const u = new URL(url);
    return new Http1Connection(u.hostname, Number(u.port || 80));
  }

  onClosed(cb: (err?: Error) => void): void {
    this.closedCallbacks.push(cb);
  }

  request(method: string, path: string, handler: ResponseHandler, headers: Record<string, string> = {}, body?: Buffer): void {
    this.handler = handler;
    this.state = "head";
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body) head += `Content-Length: ${body.byteLength}\r\n`;
    head += "\r\n";
    this.socket.write(body ? Buffer.concat([Buffer.from(head, "latin1"), body]) : head);
  }

  close(): void {
    this.socket.destroy();
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // A body delimited by the connection closing ends here.
    if (this.state === "until-close" && this.head) this.handler?.onEnd?.(this.head);
    for (const cb of this.closedCallbacks) cb(err);
  }

  private onData(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    for (;;) {
      if (this.state === "head") {
        const end = this.buf.indexOf(HEAD_END);
        if (end < 0) return;
        const lines = this.buf.toString("latin1", 0, end).split("\r\n");
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
        else if (headers.get("transfer-encoding")?.includes("chunked")) this.state = "chunk-size";
        else if (headers.has("content-length")) {
          this.remaining = Number(headers.get("content-length"));
          this.state = "length";
          if (this.remaining === 0) this.finish();
        } else this.state = "until-close";
        continue;
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
      if (this.state === "until-close") {
        if (this.buf.length) this.handler?.onBody?.(this.buf);
        this.buf = Buffer.alloc(0);
        return;
      }
      // chunk-size, chunk-crlf and trailer lines
      const eol = this.buf.indexOf(CRLF);
      if (eol < 0) return;
      const line = this.buf.toString("latin1", 0, eol);
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
