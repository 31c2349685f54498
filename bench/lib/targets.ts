// The servers under test. Every one runs in its own process(es); the driver only starts,
// measures and stops them.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster } from "../../test/support/cluster.ts";
import { freePort, ROOT, spawnServer } from "../../test/support/spawn-server.ts";
import { databaseUrl, dropSchema } from "./pg.ts";
import { sleep } from "./proc.ts";

export type TargetKind = "ours-1" | "ours-3" | "ref-mem" | "ref-file" | "floor";

export const TARGET_LABELS: Record<TargetKind, string> = {
  "ours-1": "ours, 1 instance",
  "ours-3": "ours, 3 instances + nginx",
  "ref-mem": "reference, memory",
  "ref-file": "reference, file",
  floor: "floor: minimal Bun broadcaster",
};

export interface Target {
  kind: TargetKind;
  /** Where clients send requests (the load balancer for ours-3). */
  url: string;
  /** Each server instance's own URL (one entry except for clusters). */
  instanceUrls: string[];
  /** Server processes whose CPU and memory count (nginx not included). */
  pids: number[];
  /** Why a server process is gone, if one is (crashed or killed mid-measurement). */
  exited(): string | undefined;
  stop(): Promise<void>;
}

/** Keeps the last few KiB a server printed, to explain a crash. */
function tail(proc: ChildProcess): () => string {
  let out = "";
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-2000));
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  return () => out;
}

function watch(procs: ChildProcess[]): () => string | undefined {
  const logs = procs.map(tail);
  return () => {
    const gone = procs.map((p, i) => ({ p, log: logs[i] })).filter(({ p }) => p.exitCode !== null || p.signalCode !== null);
    if (gone.length === 0) return undefined;
    return gone.map(({ p, log }) => `pid ${p.pid} exited (${p.signalCode ?? `code ${p.exitCode}`}): ${log().trim().split("\n").slice(-5).join(" | ")}`).join("; ");
  };
}

export interface OursOptions {
  schema: string;
  /** Keep the schema's data from an earlier target of the same scenario. */
  keepSchema?: boolean;
  env?: Record<string, string>;
}

export async function startOurs(count: 1 | 3, opts: OursOptions, loadBalancer = count > 1): Promise<Target> {
  if (!opts.keepSchema) await dropSchema(opts.schema);
  const url = databaseUrl();
  if (count === 1) {
    const s = await spawnServer({ databaseUrl: url, schema: opts.schema, env: opts.env, quiet: true, warmUp: true });
    return { kind: "ours-1", url: s.url, instanceUrls: [s.url], pids: [s.proc.pid!], exited: watch([s.proc]), stop: () => s.stop() };
  }
  const c = await startCluster({ databaseUrl: url, schema: opts.schema, count, loadBalancer, env: opts.env, quiet: true, warmUp: true });
  return {
    kind: "ours-3",
    url: c.lb?.url ?? c.instances[0].url,
    instanceUrls: c.instances.map((i) => i.url),
    pids: c.instances.map((i) => i.proc.pid!),
    exited: watch(c.instances.map((i) => i.proc)),
    stop: () => c.stop(),
  };
}

export async function startReference(mode: "memory" | "file"): Promise<Target> {
  const port = await freePort();
  const dataDir = mode === "file" ? mkdtempSync(join(tmpdir(), "ds-ref-")) : undefined;
  const args = [join(ROOT, "bench/servers/reference.mjs"), String(port), ...(dataDir ? [dataDir] : [])];
  return startProcess(mode === "memory" ? "ref-mem" : "ref-file", "node", args, port, dataDir);
}

/** The fan-out floor (bench/servers/floor.ts): not a protocol server, a yardstick. */
export async function startFloor(): Promise<Target> {
  const port = await freePort();
  return startProcess("floor", join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "bench/servers/floor.ts"), String(port)], port);
}

async function startProcess(kind: TargetKind, cmd: string, args: string[], port: number, dataDir?: string): Promise<Target> {
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (b) => (output += b));
  proc.stderr.on("data", (b) => (output += b));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!output.includes("reference server")) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`${kind} server did not start:\n${output}`);
    }
    await sleep(50);
  }
  return {
    kind,
    url,
    instanceUrls: [url],
    pids: [proc.pid!],
    exited: watch([proc]),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        await Promise.race([exited, sleep(5000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        await exited;
      }
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const running = new Set<Target>();

/** Starts a target, runs fn against it and always stops it. */
export async function withTarget<T>(start: () => Promise<Target>, fn: (t: Target) => Promise<T>): Promise<T> {
  const target = await start();
  running.add(target);
  try {
    return await fn(target);
  } finally {
    running.delete(target);
    await target.stop();
  }
}

/** Stops whatever is still running (the driver was interrupted). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((t) => t.stop()));
  running.clear();
}
