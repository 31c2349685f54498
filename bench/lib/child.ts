// A load-generating client in its own process that talks to the driver in JSON lines.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../test/support/spawn-server.ts";

const BUN = join(ROOT, "node_modules/.bin/bun");

export class JsonLineChild {
  private readonly proc: ChildProcess;
  private lines: unknown[] = [];
  private waiters: ((v: unknown) => void)[] = [];
  private stderr = "";
  private readonly exited: Promise<number | null>;

  constructor(script: string, args: string[]) {
    this.proc = spawn(BUN, [join(ROOT, script), ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let partial = "";
    this.proc.stdout!.on("data", (b: Buffer) => {
      partial += b.toString();
      let nl;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl).trim();
        partial = partial.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const value = JSON.parse(line);
        const w = this.waiters.shift();
        if (w) w(value);
        else this.lines.push(value);
      }
    });
    this.proc.stderr!.on("data", (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-4000)));
    this.exited = new Promise((r) => this.proc.once("exit", (code) => r(code)));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The next JSON line; fails if the process exits or `timeoutMs` passes first. */
  async next<T>(timeoutMs: number): Promise<T> {
    if (this.lines.length) return this.lines.shift() as T;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const line = new Promise<unknown>((r) => this.waiters.push(r));
    const failed = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`client timed out:\n${this.stderr}`)), timeoutMs);
      this.exited.then((code) => setTimeout(() => rej(new Error(`client exited (${code}):\n${this.stderr}`)), 100));
    });
    try {
      return (await Promise.race([line, failed])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGKILL");
      await this.exited;
    }
  }
}
