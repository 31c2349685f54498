// Starts the real server as a separate process (Bun or Deno, PGlite or Postgres) and
// waits for /healthz. Used by the conformance run, the crash test and the multi-instance tests.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = join(ROOT, "node_modules/.bin");

export type Runtime = "bun" | "deno";

export interface SpawnOptions {
  runtime?: Runtime;
  /** Postgres URL; omit for embedded PGlite in a fresh temporary folder. */
  databaseUrl?: string;
  schema?: string;
  dataDir?: string;
  port?: number;
  env?: Record<string, string>;
  quiet?: boolean;
  /**
   * Run the instance's warm-up traffic before it is ready (WARM_UP_APPENDS, on Postgres). Off by
   * default: tests start many servers and time none of their first requests, and the traffic
   * cost each 0.5-2 s on this machine; benchmarks and test/http/warm-up.test.ts keep it.
   */
  warmUp?: boolean;
}

export interface SpawnedServer {
  url: string;
  port: number;
  proc: ChildProcess;
  dataDir?: string;
  /** Everything the process printed so far (stdout and stderr), and its stdout alone. */
  output(): string;
  stdout(): string;
  /** SIGTERM (graceful) or SIGKILL (crash); resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The processes a process started (WORKERS=N: the supervisor's workers); [] when none. */
export function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)]).toString().trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Ports this process has handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A port nothing listens on now and that this process has not handed out before (two calls
 * in a row could otherwise return the same port, e.g. PORT and METRICS_PORT of one server).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.unref();
      srv.on("error", rej);
      srv.listen(0, "127.0.0.1", () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => res(p));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Names what a migrated PGlite template holds: the migrations and the PGlite version. */
export function templateKey(): string {
  const migrations = join(ROOT, "migrations");
  const hash = createHash("sha256");
  hash.update(readFileSync(join(ROOT, "node_modules/@electric-sql/pglite/package.json")));
  for (const f of readdirSync(migrations).sort()) hash.update(f).update(readFileSync(join(migrations, f)));
  return hash.digest("hex").slice(0, 16);
}

/**
 * A migrated PGlite folder to copy for each server that gets a fresh one: creating and
 * migrating a PGlite database takes seconds of CPU (4x the start from a copy on a loaded
 * 2-core machine), and most test servers need nothing else. Shared across processes of one
 * checkout under the temporary folder, keyed by the migrations and the PGlite version, and
 * built in a folder of its own then renamed into place, so concurrent builders cannot clash.
 */
export function pgliteTemplate(): string {
  const dir = join(tmpdir(), `ds-pglite-template-${templateKey()}`);
  if (existsSync(dir)) return dir;
  const building = mkdtempSync(join(tmpdir(), "ds-pglite-building-"));
  const env = { ...process.env, DATA_DIR: building, LOG_LEVEL: "warn" } as Record<string, string>;
  delete env.DATABASE_URL;
  const run = spawnSync(join(BIN, "bun"), ["src/migrate.ts"], { cwd: ROOT, env, stdio: "pipe" });
  if (run.status !== 0) throw new Error(`could not build the PGlite template: ${run.stderr}`);
  try {
    renameSync(building, dir);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process got there first
  }
  return dir;
}

export function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ds-pglite-"));
  cpSync(pgliteTemplate(), dir, { recursive: true });
  return dir;
}

export async function spawnServer(opts: SpawnOptions = {}): Promise<SpawnedServer> {
  const runtime = opts.runtime ?? "bun";
  const port = opts.port ?? (await freePort());
  const ownDataDir = !opts.databaseUrl && !opts.dataDir ? freshDataDir() : undefined;
  const dataDir = opts.dataDir ?? ownDataDir;
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: "127.0.0.1",
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
    ...(opts.schema ? { DATABASE_SCHEMA: opts.schema } : {}),
    ...(opts.warmUp ? {} : { WARM_UP_APPENDS: "0" }),
    ...opts.env,
  };
  if (!opts.databaseUrl) delete env.DATABASE_URL;
  const args = runtime === "bun" ? ["src/main.ts"] : ["run", "-A", "src/main.ts"];
  const proc = spawn(join(BIN, runtime), args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (b: Buffer) => {
    output += b.toString();
    if (!opts.quiet) process.stderr.write(`[${runtime}:${port}] ${b}`);
  };
  let stdout = "";
  proc.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  proc.stdout!.on("data", collect);
  proc.stderr!.on("data", collect);
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited during start-up:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`server did not become healthy:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    proc,
    dataDir,
    output: () => output,
    stdout: () => stdout,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await exited;
      }
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the server until it exits by itself (start-up refusals and failures), with `env` over
 * this process's environment; killed after 30 s. Its exit code and everything it printed.
 */
export function runToExit(runtime: Runtime, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const args = runtime === "bun" ? ["src/main.ts"] : ["run", "-A", "src/main.ts"];
  const proc = spawn(join(BIN, runtime), args, { cwd: ROOT, env: { ...(process.env as Record<string, string>), ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout!.on("data", (b: Buffer) => (output += b));
  proc.stderr!.on("data", (b: Buffer) => (output += b));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    proc.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}
