// Runs wrk (Debian's package) as the load generator and parses the JSON line that
// bench/wrk/report.lua prints.
import { join } from "node:path";
import { ROOT } from "../../test/support/spawn-server.ts";
import { run } from "./proc.ts";

export const WRK_BIN = process.env.WRK_BIN ?? "wrk";
const SCRIPTS = join(ROOT, "bench/wrk");

export interface WrkResult {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { mean: number; p50: number; p90: number; p99: number; max: number };
  /** Script counters (summed over threads). */
  [counter: string]: unknown;
}

export interface WrkOptions {
  url: string;
  script: "append" | "producer" | "catchup";
  threads: number;
  connections: number;
  seconds: number;
  env?: Record<string, string>;
  /** Per-request timeout; a 128 MiB catch-up response needs more than wrk's 2 s. */
  timeoutSeconds?: number;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    `--timeout`,
    `${o.timeoutSeconds ?? 10}s`,
    `-s`,
    join(SCRIPTS, `${o.script}.lua`),
    o.url,
  ];
  const res = await run(WRK_BIN, args, {
    timeoutMs: (o.seconds + (o.timeoutSeconds ?? 10) + 30) * 1000,
    env: { ...o.env, LUA_PATH: `${SCRIPTS}/?.lua;;` },
  });
  const line = res.stdout.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (res.code !== 0 || !line) throw new Error(`wrk failed (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  return JSON.parse(line.slice("WRK_JSON ".length)) as WrkResult;
}

export const errorCount = (r: WrkResult) => Object.values(r.errors).reduce((a, b) => a + b, 0);

export const perSecond = (r: WrkResult, n = r.requests) => n / (r.duration_us / 1e6);
