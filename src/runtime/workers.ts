// WORKERS=N: one command, N server processes on one port. The first process only
// supervises: it starts N copies of itself (same runtime, script and environment, plus
// DS_WORKER=<i>), each listening on PORT with SO_REUSEPORT so the kernel spreads
// connections over them. Every worker is a full instance (own pool, own LISTEN
// connection), exactly like instances behind a load balancer, so nothing is shared in
// memory and nothing new can go wrong between them. The supervisor passes SIGTERM/SIGINT
// (drain) and SIGHUP (reload tokens) on, restarts a worker that dies on its own (at most
// once a second per worker), and exits once every worker has exited after a stop signal.
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

export const WORKER_ENV = "DS_WORKER";

/** This process's worker number when it is one of WORKERS processes, else undefined. */
export function workerIndex(env: Record<string, string | undefined>): number | undefined {
  const v = env[WORKER_ENV];
  return v === undefined || v === "" ? undefined : Number(v);
}

declare const Deno: { execPath(): string } | undefined;

/** How to start this same program again: the runtime, its flags and the entry script. */
function selfCommand(): { cmd: string; args: string[] } {
  const script = process.argv[1];
  if (typeof Deno !== "undefined") {
    // Deno's own flags are not in argv: the workers get all permissions, SO_REUSEPORT
    // (still an unstable API on Deno), and deno.json, found from the same working
    // directory, sets the rest as it did for this process.
    return { cmd: Deno.execPath(), args: ["run", "-A", "--unstable-net", script] };
  }
  return { cmd: process.execPath, args: [script] };
}

export interface SupervisorOptions {
  count: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** Runs the supervisor until every worker is gone after a stop signal; resolves with the exit code. */
export function supervise({ count, log }: SupervisorOptions): Promise<number> {
  const { cmd, args } = selfCommand();
  const workers: (ChildProcess | undefined)[] = new Array(count).fill(undefined);
  const lastStart: number[] = new Array(count).fill(0);
  const quickFailures: number[] = new Array(count).fill(0);
  let stopping = false;
  let failed = false;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));

  const start = (i: number) => {
    lastStart[i] = Date.now();
    const child = spawn(cmd, args, { env: { ...process.env, [WORKER_ENV]: String(i) }, stdio: "inherit" });
    workers[i] = child;
    child.on("exit", (code, signal) => {
      workers[i] = undefined;
      if (stopping) {
        if (code !== 0 && code !== null) failed = true;
        if (workers.every((w) => w === undefined)) done(failed ? 1 : 0);
        return;
      }
      // A worker that keeps dying right after it starts (bad configuration, port taken)
      // will not get better: everything stops, with an exit code that says so.
      quickFailures[i] = Date.now() - lastStart[i] < 5000 ? quickFailures[i] + 1 : 0;
      if (quickFailures[i] >= 3) {
        log("worker keeps failing at start; stopping", { worker: i, code, signal });
        failed = true;
        stopAll("SIGTERM");
        return;
      }
      log("worker exited; starting it again", { worker: i, code, signal });
      setTimeout(() => !stopping && start(i), Math.max(0, 1000 - (Date.now() - lastStart[i])));
    });
  };
  for (let i = 0; i < count; i++) start(i);
  log("supervising workers", { workers: count, pids: workers.map((w) => w?.pid) });

  function stopAll(signal: "SIGTERM" | "SIGINT"): void {
    stopping = true;
    const alive = workers.filter((w): w is ChildProcess => w !== undefined);
    if (alive.length === 0) done(failed ? 1 : 0);
    for (const w of alive) w.kill(signal);
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => stopAll(signal));
  process.on("SIGHUP", () => {
    for (const w of workers) w?.kill("SIGHUP");
  });
  return finished;
}
