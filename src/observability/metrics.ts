// Prometheus metrics (prom-client), one registry per process. Counters and histograms are
// module-level so the code that counts needs one import and one call; gauges read their
// values at scrape time from the running servers (observeServer). No label ever names a
// stream: labels take a few fixed values each, so the series count stays bounded.
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { ON_BUN } from "../runtime/bun.ts";
import { LeanCounter, LeanHistogram } from "./lean-metrics.ts";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });
// These three are gauges named like counters, which Prometheus' linter (promtool) rejects;
// they also read Node internals that Bun and Deno do not fully provide.
for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
  registry.removeSingleMetric(name);
}
// On Bun, the heap-space gauges come from a census of every object on the heap: one scrape
// of a busy server held the event loop for 20-30 ms (bench/README.md), every request waiting.
// The heap totals (nodejs_heap_size_*_bytes) stay: they come from process.memoryUsage().
if (ON_BUN) {
  for (const kind of ["total", "used", "available"]) registry.removeSingleMetric(`nodejs_heap_space_size_${kind}_bytes`);
}

const registers = [registry];

// ---- HTTP (observability/http.ts); counted on every request, so lean (lean-metrics.ts)

export const httpRequests = new LeanCounter({
  name: "ds_http_requests_total",
  help: "HTTP requests answered, by method, operation and status",
  labelNames: ["method", "operation", "status"] as const,
  registers,
});

export const httpDuration = new LeanHistogram({
  name: "ds_http_request_duration_seconds",
  help: "Time until the response starts, by operation (a long-poll includes its wait; an SSE response starts at once)",
  labelNames: ["operation"] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers,
});

// ---- appends (store/streams/appender.ts); counted per append and per group, so lean too

const appends = new LeanCounter({ name: "ds_appends_total", help: "Appends taken into append groups (a redo counts again)", registers }).labels();
const appendGroups = new LeanCounter({ name: "ds_append_groups_total", help: "Append groups committed or attempted", registers }).labels();
const appendGroupSize = new LeanHistogram({
  name: "ds_append_group_size",
  help: "Appends per group",
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  registers,
}).labels();
const appendGroupSeconds = new LeanHistogram({
  name: "ds_append_group_commit_seconds",
  help: "Time one append group takes to commit",
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers,
}).labels();
const appendQueueSeconds = new LeanHistogram({
  name: "ds_append_queue_wait_seconds",
  help: "Time an append waits between its request handing it over and its group starting",
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers,
}).labels();
const casLost = new LeanCounter({
  name: "ds_append_cas_lost_total",
  help: "Appends redone under row locks after another instance moved their stream (lost compare-and-set)",
  registers,
}).labels();

/** How long each append of a starting group waited for it (queued at `queuedAt`, performance.now()). */
export function recordAppendQueueWait(queuedAt: number[], now: number): void {
  for (const at of queuedAt) appendQueueSeconds.observe((now - at) / 1000);
}

/** One append group ran (its statement returned); `locked` when it was a redo under row locks. */
export function recordAppendGroup(size: number, seconds: number, locked: boolean): void {
  appends.inc(size);
  appendGroups.inc();
  appendGroupSize.observe(size);
  appendGroupSeconds.observe(seconds);
  if (locked) casLost.inc(size);
}

// ---- live reads (live/notifier.ts)

export const notificationsReceived = new Counter({
  name: "ds_notifications_received_total",
  help: "Change notifications received on the LISTEN connection (pings excluded)",
  registers,
});
export const listenerReconnects = new Counter({
  name: "ds_listener_reconnects_total",
  help: "Times the LISTEN connection came back after a drop (every live reader then re-checks)",
  registers,
});
export const backstopWakeups = new Counter({
  name: "ds_backstop_wakeups_total",
  help: "Live readers woken by the backstop query rather than by a notification",
  registers,
});

// ---- background work that failed (observability/background.ts)

export const backgroundFailures = new Counter({
  name: "ds_background_failures_total",
  help: "Background tasks that failed (each also logged once), by task",
  labelNames: ["task"] as const,
  registers,
});

// ---- expiry sweeper (server.ts)

const sweeps = new Counter({ name: "ds_expiry_sweeps_total", help: "Expiry sweeps, by result", labelNames: ["result"] as const, registers });
const sweptStreams = new Counter({ name: "ds_expiry_swept_streams_total", help: "Expired streams removed from storage", registers });

/** Runs one expiry sweep, counting it; a failure is counted and logged by `onError`. */
export async function timedSweep(sweep: () => Promise<number>, onError: (err: unknown) => void): Promise<void> {
  try {
    sweptStreams.inc(await sweep());
    sweeps.inc({ result: "ok" });
  } catch (err) {
    sweeps.inc({ result: "error" });
    onError(err);
  }
}

// ---- database (observability/db.ts)

export const dbErrors = new Counter({
  name: "ds_db_unavailable_errors_total",
  help: "Database operations that failed because Postgres was unreachable or restarting",
  registers,
});

// ---- gauges read at scrape time

/** What a running server reports; several in one process (tests) add up. */
export interface GaugeSource {
  liveWaiters(): number;
  sseMembers(): number;
  listenerUp(): boolean;
  dbInUse(): number;
  dbWaiting(): number;
  dbUp(): boolean;
}

const sources = new Set<GaugeSource>();
const sum = (f: (s: GaugeSource) => number) => [...sources].reduce((n, s) => n + f(s), 0);

function gauge(name: string, help: string, read: (s: GaugeSource) => number): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(sum(read));
    },
  });
}

gauge("ds_live_waiters", "Live readers waiting on this instance (long-polls, plus one per SSE hub)", (s) => s.liveWaiters());
gauge("ds_sse_hub_members", "Caught-up SSE readers in per-stream hubs", (s) => s.sseMembers());
gauge("ds_listener_up", "1 when the LISTEN connection is connected and has heard its own ping recently", (s) => Number(s.listenerUp()));
gauge("ds_db_pool_in_use", "Database operations holding a pool connection", (s) => s.dbInUse());
gauge("ds_db_pool_waiting", "Database operations beyond the pool size (queued behind another on a connection)", (s) => s.dbWaiting());
gauge("ds_db_up", "0 from the first failed database operation of an outage until one succeeds again", (s) => Number(s.dbUp()));

/** Adds a running server's gauges; returns the function that removes them (on stop). */
export function observeServer(source: GaugeSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

/** The exposition text and its content type. */
export async function metricsText(): Promise<{ body: string; contentType: string }> {
  return { body: await registry.metrics(), contentType: registry.contentType };
}
