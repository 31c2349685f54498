// 6. Subscriptions: 100 webhook subscriptions, each a glob over its own 10 of 1,000 streams
// (g<k>/* over g<k>/<i>), with a real webhook receiver (bench/clients/webhooks.ts) that
// answers every wake {"done":true}.
//   - latency: a writer appends 100 times a second, in stream order, so each subscription
//     gets one append a second (its previous wake long acked) and every append should make
//     exactly one wake; append sent → webhook received, p50 / p99;
//   - throughput: wrk appends (64 connections, 1,000 streams) with the 100 subscriptions
//     active vs none, on fresh servers; every append then lands on some subscription's glob.
import { JsonLineChild } from "../lib/child.ts";
import { createStreams, groupedStreams, parallel } from "../lib/http.ts";
import { measureWrk, rateCell } from "../lib/measure.ts";
import { CpuMeter, round, sleep } from "../lib/proc.ts";
import { type Column, fmt, limitCheck, type MetricRow, ratioCheck, type ScenarioResult } from "../lib/results.ts";
import { type Ctx, eachTarget, type Lineup, type Scenario, seconds, valueOf } from "../lib/scenario.ts";
import { startOurs, startReference, type Target } from "../lib/targets.ts";

/** The receiver runs on this machine: webhooks to private targets are opt-in (issue 25.6). */
const LOCAL_RECEIVER = { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" };
import { errorCount, runWrk } from "../lib/wrk.ts";

const CLIENT = "bench/clients/webhooks.ts";
const STREAMS = 1000;
const SUBSCRIPTIONS = 100;
/** Appends a second in the latency run: one per subscription per second. */
const APPENDS_PER_SECOND = 100;
const CONNECTIONS = 64;
const BODY_BYTES = 100;

interface WriterOutput {
  failed: number;
  /** [stream, Stream-Next-Offset, sent at µs, warm-up ? 1 : 0] */
  appends: [string, string, number, number][];
}

interface ReceiverReport {
  wakes: number;
  pendingStreams: number;
  badBodies: number;
  subscriptions: number;
  callbackUrl?: string;
  signatures: { checked: number; valid: number; error?: string };
  /** [received at µs, subscription id, [path, acked offset, tail offset][] of pending streams] */
  records: [number, string, [string, string, string][]][];
}

const SUBSCRIPTION_PATH = (k: number) => `/v1/stream/__ds/subscriptions/bench-${k}`;

async function startReceiver(t: Target, mode: "record" | "count"): Promise<{ child: JsonLineChild; url: string }> {
  const child = new JsonLineChild(CLIENT, ["receiver", mode, `${t.url}/v1/stream/__ds/jwks.json`]);
  try {
    const { url } = await child.next<{ url: string }>(15_000);
    return { child, url };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** The 1,000 streams, then subscription k on glob g<k>/* (linked at the streams' tails). */
async function setUp(t: Target, hookUrl: string | undefined): Promise<void> {
  await createStreams(t.url, groupedStreams(STREAMS, SUBSCRIPTIONS), "application/octet-stream");
  if (!hookUrl) return;
  await parallel(SUBSCRIPTIONS, 8, async (k) => {
    const res = await fetch(`${t.url}${SUBSCRIPTION_PATH(k)}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "webhook", pattern: `g${k}/*`, webhook: { url: hookUrl } }),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`create subscription bench-${k}: HTTP ${res.status} ${text}`);
  });
  // Every instance reloads its trigger set on the links notification; give it a moment.
  await sleep(500);
}

/** Webhooks each of our instances delivered so far (/healthz), empty for the reference. */
async function deliveredPerInstance(t: Target): Promise<number[]> {
  if (!t.kind.startsWith("ours")) return [];
  return Promise.all(
    t.instanceUrls.map(async (u) => ((await (await fetch(`${u}/healthz`)).json()) as { deliveries?: { delivered: number } }).deliveries?.delivered ?? NaN),
  );
}

/**
 * Matches wakes with appends: a wake covers, on each stream it reports pending, the appends
 * whose resulting offset lies in (acked, tail]. Its latency is from the earliest of those
 * appends' send time to its arrival. Wakes covering a warm-up append are left out.
 */
export function matchWakes(appends: WriterOutput["appends"], records: ReceiverReport["records"]) {
  const byStream = new Map<string, { offset: string; at: number; warm: boolean; seen: number }[]>();
  for (const [stream, offset, at, warm] of appends) {
    const list = byStream.get(stream) ?? [];
    list.push({ offset, at, warm: warm === 1, seen: 0 });
    byStream.set(stream, list);
  }
  const latencies: number[] = [];
  let unmatched = 0;
  let warmWakes = 0;
  let coalesced = 0;
  for (const [at, , pending] of records) {
    const covered = pending.flatMap(([path, acked, tail]) => (byStream.get(path) ?? []).filter((a) => a.offset > acked && a.offset <= tail));
    if (covered.length === 0) {
      unmatched++;
      continue;
    }
    for (const a of covered) a.seen++;
    if (covered.some((a) => a.warm)) {
      warmWakes++;
      continue;
    }
    if (covered.length > 1) coalesced++;
    latencies.push((at - Math.min(...covered.map((a) => a.at))) / 1000);
  }
  const all = [...byStream.values()].flat();
  const measured = all.filter((a) => !a.warm);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
  return {
    appends: measured.length,
    wakes: latencies.length,
    appendsDelivered: measured.filter((a) => a.seen > 0).length,
    appendsRedelivered: measured.filter((a) => a.seen > 1).length,
    coalescedWakes: coalesced,
    unmatchedWakes: unmatched,
    warmUpWakes: warmWakes,
    warmUpAppendsRedelivered: all.filter((a) => a.warm && a.seen > 1).length,
    p50: round(q(0.5), 2),
    p90: round(q(0.9), 2),
    p99: round(q(0.99), 2),
    max: round(latencies[latencies.length - 1] ?? NaN, 2),
  };
}

async function measureLatency(t: Target, appendBase: string, warmupS: number, durationS: number) {
  const receiver = await startReceiver(t, "record");
  let writer: JsonLineChild | undefined;
  try {
    await setUp(t, receiver.url);
    const before = await deliveredPerInstance(t);
    const server = new CpuMeter(t.pids);
    const client = new CpuMeter([receiver.child.pid]);
    writer = new JsonLineChild(CLIENT, ["writer", appendBase, String(STREAMS), String(SUBSCRIPTIONS), String(APPENDS_PER_SECOND), String(warmupS), String(durationS)]);
    const written = await writer.next<WriterOutput>((warmupS + durationS + 60) * 1000);
    await sleep(2000); // wakes still in flight
    const cpu = server.stop();
    const receiverCores = client.stop().serverCores;
    receiver.child.send("report");
    const report = await receiver.child.next<ReceiverReport>(30_000);
    const after = await deliveredPerInstance(t);
    return {
      match: matchWakes(written.appends, report.records),
      appendsFailed: written.failed,
      report,
      deliveredByInstance: after.map((n, i) => n - before[i]),
      cpu,
      receiverCores,
    };
  } finally {
    await Promise.all([receiver.child.stop(), writer?.stop()]);
  }
}

async function measureThroughput(t: Target, withSubscriptions: boolean, warmupS: number, durationS: number) {
  const receiver = withSubscriptions ? await startReceiver(t, "count") : undefined;
  try {
    await setUp(t, receiver?.url);
    const wrk = {
      script: "append" as const,
      threads: 1,
      connections: CONNECTIONS,
      seconds: durationS,
      env: { BENCH_STREAMS: String(STREAMS), BENCH_PREFIX: "g", BENCH_GROUPS: String(SUBSCRIPTIONS), BENCH_BODY_BYTES: String(BODY_BYTES) },
    };
    await runWrk({ ...wrk, url: t.url, seconds: warmupS });
    receiver?.child.send("reset");
    await receiver?.child.next(10_000);
    const client = receiver && new CpuMeter([receiver.child.pid]);
    const m = await measureWrk(t, wrk, 0);
    const receiverCores = client?.stop().serverCores;
    receiver?.child.send("report");
    const report = await receiver?.child.next<ReceiverReport>(30_000);
    return { m, report, receiverCores };
  } finally {
    await receiver?.child.stop();
  }
}

export const subscriptionsScenario: Scenario = {
  id: "subs",
  title: `Subscriptions (${SUBSCRIPTIONS} webhook subscriptions, each a glob over 10 of ${STREAMS.toLocaleString("en-US")} streams: append → webhook latency; appends/s with vs without)`,
  async run(ctx: Ctx): Promise<ScenarioResult> {
    const latencySeconds = seconds(ctx, 20, 3);
    const latencyWarmup = seconds(ctx, 2, 1);
    const wrkSeconds = seconds(ctx, 15, 3);
    const wrkWarmup = seconds(ctx, 3, 1);
    const rows = {
      p50: { metric: "Append → webhook p50", unit: "ms", cells: {} } as MetricRow,
      p99: { metric: "Append → webhook p99", unit: "ms", cells: {} } as MetricRow,
      none: { metric: "Appends/s, no subscriptions", unit: "appends/s", cells: {} } as MetricRow,
      subs: { metric: `Appends/s, ${SUBSCRIPTIONS} glob subscriptions`, unit: "appends/s", cells: {} } as MetricRow,
    };
    rows.p50.note =
      `${SUBSCRIPTIONS} webhook subscriptions, subscription k on glob g<k>/* (10 streams each, ${STREAMS.toLocaleString("en-US")} streams), the receiver answers {"done":true}; ${APPENDS_PER_SECOND} appends/s in stream order (one per subscription per second); ours, 3 instances: appends to instance 1, subscriptions created through nginx, each wake delivered by the instance that started it (instance 1); the reference on one instance`;
    rows.none.note = `wrk, ${CONNECTIONS} connections, ${BODY_BYTES}-byte appends to one of the ${STREAMS.toLocaleString("en-US")} streams g<i % 100>/<i> at random, on a fresh server; with subscriptions, the same ${SUBSCRIPTIONS} globs cover every stream and the receiver acks every wake`;
    const notes: string[] = [];

    const latencyLineup: Lineup[] = [
      { column: "ours-1", start: () => startOurs(1, { schema: "bench_subs_lat", env: LOCAL_RECEIVER }) },
      { column: "ours-3", start: () => startOurs(3, { schema: "bench_subs_lat_3", env: LOCAL_RECEIVER }) },
      { column: "ref-mem", start: () => startReference("memory") },
    ];
    // BENCH_SUBS_PART=latency|throughput runs one half (with BENCH_COLUMNS, for iterating).
    const part = process.env.BENCH_SUBS_PART;
    await eachTarget(ctx, "subs latency", part === "throughput" ? [] : latencyLineup, notes, async (column, t) => {
      const r = await measureLatency(t, t.instanceUrls[0], latencyWarmup, latencySeconds);
      const { match } = r;
      const detail = {
        ...match,
        appendsFailed: r.appendsFailed,
        appendsPerSecond: APPENDS_PER_SECOND,
        receiver: { wakes: r.report.wakes, subscriptions: r.report.subscriptions, badBodies: r.report.badBodies, signatures: r.report.signatures, callbackUrl: r.report.callbackUrl },
        ...(r.deliveredByInstance.length ? { deliveredByInstance: r.deliveredByInstance } : {}),
        cpuCores: { server: r.cpu.serverCores, postgres: r.cpu.postgresCores, receiver: r.receiverCores, machine: r.cpu.machineCores },
      };
      rows.p50.cells[column] = { value: match.p50, detail };
      rows.p99.cells[column] = { value: match.p99 };
      if (match.wakes < match.appends || match.unmatchedWakes || match.appendsRedelivered || r.appendsFailed) {
        notes.push(
          `${column}: ${match.wakes} wakes for ${match.appends} appends (${match.appendsDelivered} appends delivered, ${match.coalescedWakes} wakes covering several, ${match.appendsRedelivered} delivered twice, ${match.unmatchedWakes} wakes matching no append, ${r.appendsFailed} appends failed)`,
        );
      }
      if (r.report.signatures.valid < r.report.signatures.checked) {
        notes.push(`${column}: only ${r.report.signatures.valid} of ${r.report.signatures.checked} webhook signatures verified against ${t.url}/v1/stream/__ds/jwks.json${r.report.signatures.error ? ` (${r.report.signatures.error})` : ""}`);
      }
      if (r.report.callbackUrl && !r.report.callbackUrl.startsWith(`${t.url}/`)) notes.push(`${column}: callback_url ${r.report.callbackUrl} is not under ${t.url}`);
    });

    // Fresh servers for each half, "none" first, per server kind.
    const throughputLineup: { column: Column; start: (variant: string) => Promise<Target> }[] = [
      { column: "ours-1", start: (v) => startOurs(1, { schema: `bench_subs_${v}`, env: LOCAL_RECEIVER }) },
      { column: "ref-mem", start: () => startReference("memory") },
    ];
    for (const { column, start } of part === "latency" ? [] : throughputLineup) {
      for (const withSubscriptions of [false, true]) {
        const row = withSubscriptions ? rows.subs : rows.none;
        const label = `subs appends/s ${withSubscriptions ? "with subscriptions" : "none"}`;
        await eachTarget(ctx, label, [{ column, start: () => start(withSubscriptions ? "glob" : "none") }], notes, async (_c, t) => {
          const { m, report, receiverCores } = await measureThroughput(t, withSubscriptions, wrkWarmup, wrkSeconds);
          if (errorCount(m.wrk) > 0) notes.push(`${column} (${label}): ${errorCount(m.wrk)} failed requests (${JSON.stringify(m.wrk.errors)}); only successes count`);
          const ok = m.wrk.requests - m.wrk.errors.status;
          const extra = report
            ? { wakes: report.wakes, wakesPerSecond: round(report.wakes / (m.wrk.duration_us / 1e6), 0), subscriptionsWoken: report.subscriptions, receiverCores }
            : {};
          row.cells[column] = rateCell(m, (ok / m.wrk.duration_us) * 1e6, extra);
          if (report && report.wakes === 0) notes.push(`${column}: no wakes arrived during the run with subscriptions`);
        });
      }
    }

    const checks = [
      limitCheck("Append → webhook p50 vs reference in memory", valueOf(rows.p50, "ours-1") / valueOf(rows.p50, "ref-mem"), "<=", 1.5, "×", `${fmt(valueOf(rows.p50, "ours-1"))} / ${fmt(valueOf(rows.p50, "ref-mem"))} ms`),
      ratioCheck(`Appends/s with ${SUBSCRIPTIONS} glob subscriptions vs none (ours, 1 instance)`, valueOf(rows.subs, "ours-1"), valueOf(rows.none, "ours-1"), 0.8, "appends/s"),
    ];
    return { id: this.id, title: this.title, date: new Date().toISOString(), quick: ctx.quick, rows: Object.values(rows), checks, notes };
  },
};
