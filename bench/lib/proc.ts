// Process-level measurements read straight from /proc, and a bounded way to run a
// load generator as a child process.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat times are in these ticks

/** Resident set size in MiB (VmRSS), or NaN when the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** user+system CPU seconds a process has used so far (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; the name itself may contain spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used so far by a process and its children: its own, its exited children's
 * (those it waited for), and each live child's. For a postmaster: the whole cluster.
 */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(name) === pid) total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
      else if (Number(f[1]) === pid) total += (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch {
      // exited while we looked
    }
  }
  return total;
}

/** CPU seconds of each running postgres process, by pid. */
export function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, "utf8").trim() === "postgres") out.set(Number(name), cpuSeconds(Number(name)));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** CPU postgres used between two samples; backends that exited in between are not counted. */
function postgresDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
  return total;
}

/** Whole-machine busy CPU seconds (all cores), to tell what else ate the CPU. */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + v[4];
  return (v.reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
}

/** Samples CPU use of the given pids, postgres and the machine over an interval. */
export class CpuMeter {
  private start: { pids: number; pg: Map<number, number>; machine: number; at: number };
  constructor(private readonly pids: number[]) {
    this.start = this.sample();
  }
  private sample() {
    return {
      pids: this.pids.reduce((s, p) => s + cpuSeconds(p), 0),
      pg: postgresCpu(),
      machine: machineBusySeconds(),
      at: performance.now() / 1000,
    };
  }
  /** Average cores used over the interval: by the servers, by postgres, by the machine. */
  stop(): { serverCores: number; postgresCores: number; machineCores: number; seconds: number } {
    const end = this.sample();
    const dt = end.at - this.start.at;
    return {
      serverCores: round((end.pids - this.start.pids) / dt, 2),
      postgresCores: round(postgresDelta(this.start.pg, end.pg) / dt, 2),
      machineCores: round((end.machine - this.start.machine) / dt, 2),
      seconds: round(dt, 1),
    };
  }
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; it is killed if it outlives `timeoutMs`. */
export function run(cmd: string, args: string[], opts: { timeoutMs: number; env?: Record<string, string>; cwd?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...(process.env as Record<string, string>), ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
