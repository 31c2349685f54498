// One wrk measurement against a running target: a short warm-up (JIT, pools, prepared
// statements), then the measured run with the servers' CPU and memory sampled around it.
import { committedTransactions } from "./pg.ts";
import type { Cell } from "./results.ts";
import { CpuMeter, round, rssMiB } from "./proc.ts";
import type { Target } from "./targets.ts";
import { perSecond, runWrk, type WrkOptions, type WrkResult } from "./wrk.ts";

export interface Measured {
  wrk: WrkResult;
  perSecond: number;
  /**
   * Postgres transactions committed in the database during the run (ours only). More than the
   * append groups: a listening backend runs one transaction each time it reads notifications.
   */
  transactions?: number;
  /** Appends per group as the servers count them (ds_append_group_size on /metrics; ours only). */
  appendsPerGroup?: number;
  cpu: ReturnType<CpuMeter["stop"]>;
  rssMiB: number;
}

export async function measureWrk(
  target: Target,
  opts: Omit<WrkOptions, "url">,
  warmupSeconds: number,
  warmupEnv: Record<string, string> = {},
): Promise<Measured> {
  if (warmupSeconds > 0) await runWrk({ ...opts, url: target.url, seconds: warmupSeconds, env: { ...opts.env, ...warmupEnv } });
  // Transactions per request only mean something for appends (group commit batch size).
  const ours = target.kind.startsWith("ours") && opts.script !== "catchup";
  const commitsBefore = ours ? await committedTransactions() : 0;
  const groupsBefore = ours ? await groupSizes(target) : undefined;
  const meter = new CpuMeter(target.pids);
  const wrk = await runWrk({ ...opts, url: target.url });
  const cpu = meter.stop();
  // Counts a few stray transactions (pings, this query's neighbours): fine for a ratio.
  const transactions = ours ? (await committedTransactions()) - commitsBefore : undefined;
  const groupsAfter = ours ? await groupSizes(target) : undefined;
  const appendsPerGroup = groupsBefore && groupsAfter && groupsAfter.count > groupsBefore.count
    ? round((groupsAfter.sum - groupsBefore.sum) / (groupsAfter.count - groupsBefore.count), 1)
    : undefined;
  const gone = target.exited();
  if (gone) throw new Error(`${target.kind}: server died during the measurement: ${gone}`);
  return { wrk, perSecond: perSecond(wrk), transactions, appendsPerGroup, cpu, rssMiB: round(target.pids.reduce((s, p) => s + rssMiB(p), 0)) };
}

/** Appends and groups committed so far, summed over the target's instances (their /metrics). */
async function groupSizes(target: Target): Promise<{ sum: number; count: number } | undefined> {
  let sum = 0;
  let count = 0;
  for (const url of target.instanceUrls) {
    const text = await fetch(`${url}/metrics`).then((r) => (r.ok ? r.text() : ""), () => "");
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    sum += value("ds_append_group_size_sum");
    count += value("ds_append_group_size_count");
  }
  return Number.isFinite(sum) && Number.isFinite(count) ? { sum, count } : undefined;
}

/** A table cell for a requests-per-second measurement, with the evidence kept alongside. */
export function rateCell(m: Measured, value = m.perSecond, extra: Record<string, unknown> = {}): Cell {
  const ms = (us: number) => round(us / 1000, 2);
  const perRequest = (cores: number) => (m.wrk.requests > 0 ? round((cores * m.cpu.seconds * 1e6) / m.wrk.requests, 0) : NaN);
  return {
    value: round(value, 0),
    detail: {
      requests: m.wrk.requests,
      latencyMs: { p50: ms(m.wrk.latency_us.p50), p90: ms(m.wrk.latency_us.p90), p99: ms(m.wrk.latency_us.p99), max: ms(m.wrk.latency_us.max) },
      errors: m.wrk.errors,
      cpuCores: { server: m.cpu.serverCores, postgres: m.cpu.postgresCores, machine: m.cpu.machineCores },
      cpuUsPerRequest: { server: perRequest(m.cpu.serverCores), postgres: perRequest(m.cpu.postgresCores) },
      ...(m.transactions !== undefined ? { requestsPerTransaction: round(m.wrk.requests / Math.max(1, m.transactions), 1) } : {}),
      ...(m.appendsPerGroup !== undefined ? { appendsPerGroup: m.appendsPerGroup } : {}),
      rssMiB: m.rssMiB,
      ...extra,
    },
  };
}
