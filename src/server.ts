// Wires config, database, migrations, live notifier and the HTTP app together; serves on
// the current runtime through a thin adapter, and shuts down gracefully.
import type { Config } from "./settings.ts";
import { Guard } from "./auth/guard.ts";
import { type App, buildApp } from "./http/app.ts";
import { inertSubscriptions, type WarmUpReport, warmUpTraffic } from "./http/warm-up.ts";
import { Notifier } from "./live/notifier.ts";
import { SharedReads } from "./live/shared-reads.ts";
import { SseHubs } from "./live/sse-hub.ts";
import { StreamCache } from "./live/stream-cache.ts";
import { serve, type ServerHandle } from "./runtime/serve.ts";
import { openDb } from "./store/driver/db.ts";
import { isConnectionError, Store } from "./store/index.ts";
import { parseReadUrls } from "./store/streams/standby-reads.ts";
import { migrate } from "./store/migrate.ts";
import { Subscriptions } from "./subscriptions/service.ts";
import { watchDb } from "./observability/db.ts";
import { observeHttp, startMetricsServer } from "./observability/http.ts";
import process from "node:process";
import { workerIndex } from "./runtime/workers.ts";
import { log } from "./observability/log.ts";
import { observeServer, recordAppendGroup, recordAppendQueueWait, timedSweep } from "./observability/metrics.ts";
import { RetentionRunner } from "./retention/runner.ts";
import { loadRetentionRules } from "./retention/rules.ts";

export interface RunningServer {
  url: string;
  port: number;
  /** Where /metrics is served when METRICS_PORT is set. */
  metricsPort?: number;
  subscriptions: Subscriptions;
  /** Re-reads AUTH_TOKENS_FILE (SIGHUP); throws and keeps the old keys if the file is bad. */
  reloadAuth(): string;
  stop(): Promise<void>;
}

/**
 * What a change notification updates, in the order it runs, all before any waiter of the
 * changed stream wakes (Notifier.onNotify; a failing hook costs nobody a wake-up):
 *  1. store: the writer cache drops state another instance moved, so this instance's next
 *     append group reads the row instead of losing its compare-and-set;
 *  2. cache: the live-read stream cache merges the new tail/closed (or drops the entry),
 *     so every reader woken below finds the stream without a query;
 *  3. reads: shared reads keep the notified data for the waiters about to wake, so their
 *     range read needs no query either;
 *  4. sse: SSE hubs write notified data to their caught-up readers right away.
 * All four run synchronously and none reads another's state, so the order is not what keeps
 * them correct; it is fixed here so that it is the same everywhere (tests use this too).
 * On a listener reconnect, the hooks' reset() runs in the same order, then every waiter wakes.
 */
export function addChangeHooks(
  notifier: Notifier,
  hooks: { store: Store; cache: StreamCache; reads: SharedReads; sse?: SseHubs },
): void {
  notifier.addHook(hooks.store);
  notifier.addHook(hooks.cache);
  notifier.addHook(hooks.reads);
  if (hooks.sse) notifier.addHook(hooks.sse);
}

export interface StartOptions {
  /** With DATA_DIR=memory://: start PGlite from this dump of a migrated data folder (tests). */
  pgliteDump?: Blob;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  // First: a server that would refuse to be open on this address stops before touching the database.
  const guard = await Guard.create(config);
  const retentionRules = loadRetentionRules(config.RETENTION_RULES_FILE);
  const db = await openDb({
    databaseUrl: config.DATABASE_URL,
    listenUrl: config.LISTEN_DATABASE_URL,
    prepare: config.DATABASE_PREPARE === "true",
    dataDir: config.DATA_DIR,
    loadDataDir: opts.pgliteDump,
    schema: config.DATABASE_SCHEMA,
    poolSize: config.DATABASE_POOL_SIZE,
    driver: {
      connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
      reconnectMaxMs: config.DATABASE_RECONNECT_MAX_MS,
      heartbeatMs: config.LISTENER_HEARTBEAT_MS,
      log: (msg) => log.warn(msg),
      onAvailability: (up, { cause, downForMs }) =>
        up ? log.info({ outageMs: downForMs }, "database available again") : log.error({ err: cause }, "database unavailable"),
    },
  });
  const dbWatch = watchDb(db, config.DATABASE_POOL_SIZE);
  await migrate(db);
  // Hot standbys for catch-up reads; opened without touching them (one may be down now).
  const standbys = await Promise.all(
    parseReadUrls(config.DATABASE_READ_URLS).map((databaseUrl) =>
      openDb({
        databaseUrl,
        standby: true,
        prepare: config.DATABASE_PREPARE === "true",
        schema: config.DATABASE_SCHEMA,
        poolSize: config.DATABASE_POOL_SIZE,
        driver: {
          connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
          reconnectMaxMs: config.DATABASE_RECONNECT_MAX_MS,
          onAvailability: (up, { cause, downForMs }) =>
            up ? log.info({ outageMs: downForMs }, "standby available again") : log.warn({ err: cause }, "standby unavailable; its reads go to the primary"),
        },
      })
    ),
  );
  const store = new Store(db, {
    standbys,
    appendBatchMax: config.APPEND_BATCH_MAX,
    appendConcurrency: config.APPEND_CONCURRENCY,
    appendOverlapMin: config.APPEND_OVERLAP_MIN,
    maxForkDepth: config.MAX_FORK_DEPTH,
  });
  store.observeAppends({ queueWait: recordAppendQueueWait, group: recordAppendGroup });
  // Subscriptions listen first: the stream channel stays the listener connection's last
  // statement (test/live/multi-instance.test.ts finds listener backends by it).
  const subscriptions = await Subscriptions.start(db, store, {
    publicBaseUrl: config.PUBLIC_BASE_URL,
    signingKey: config.WEBHOOK_SIGNING_KEY,
    publishedKeys: config.WEBHOOK_PUBLISHED_KEYS,
    tokenTtlSeconds: config.CALLBACK_TOKEN_TTL_S,
    concurrency: config.WEBHOOK_CONCURRENCY,
    hostConcurrency: config.WEBHOOK_HOST_CONCURRENCY,
    allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS === "true",
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    tickMs: config.SUBSCRIPTION_TICK_MS,
    backstopMs: config.SUBSCRIPTION_BACKSTOP_MS,
    wakeIntervalMs: config.SUBSCRIPTION_WAKE_INTERVAL_MS,
    tokensFile: config.AUTH_TOKENS_FILE || undefined,
    logger: log.child({ component: "subscriptions" }),
  });
  const notifier = new Notifier(db, store.channel, config.BACKSTOP_MS);
  const cache = new StreamCache(store, notifier);
  const reads = new SharedReads(store, notifier, cache);
  const sse = new SseHubs(reads, notifier, config.READ_CHUNK_BYTES);
  addChangeHooks(notifier, { store, cache, reads, sse });
  await notifier.start();
  const shutdown = new AbortController();
  let draining = false;
  // Ready (/healthz 200) only once warmed up (http/warm-up.ts): until then a load balancer
  // sends nothing, and what arrives anyway is served.
  let warm: WarmUpReport | { error: string } | undefined;
  const health = () => ({
    ok: !draining && warm !== undefined && notifier.healthy && db.available,
    detail: {
      database: db.kind,
      databaseReachable: db.available,
      listener: notifier.healthy ? "connected" : "down",
      listenerReconnects: notifier.reconnects,
      warmUp: warm ?? "in progress",
      draining,
      liveWaiters: notifier.waiterCount,
      sseReaders: sse.readerCount,
      appends: store.appendStats,
      deliveries: subscriptions.deliverer.stats,
    },
  });
  const ctx = { store, notifier, reads, sse, subscriptions, config, retentionRules, shutdown: shutdown.signal };
  const app = buildApp(ctx, health);
  const sweeper =
    config.SWEEP_INTERVAL_MS > 0
      ? setInterval(
        () => timedSweep(() => store.sweep(), (err) => isConnectionError(err) || log.error({ err }, "expiry sweep failed")),
        config.SWEEP_INTERVAL_MS,
      )
      : undefined;
  const retention = new RetentionRunner(
    db,
    retentionRules,
    { intervalMs: config.RETENTION_INTERVAL_MS, deleteGraceMs: config.COMPACTION_DELETE_RETENTION_MS },
    (err) => isConnectionError(err) || log.error({ err }, "retention pass failed"),
  );
  retention.start();
  const unobserve = observeServer({
    liveWaiters: () => notifier.waiterCount,
    sseMembers: () => sse.readerCount,
    listenerUp: () => notifier.healthy,
    dbInUse: dbWatch.inUse,
    dbWaiting: dbWatch.waiting,
    dbUp: dbWatch.up,
  });
  // One of WORKERS processes (runtime/workers.ts): the port is shared, and each worker
  // serves its own /metrics on METRICS_PORT + its number.
  const worker = workerIndex(process.env);
  const handle: ServerHandle = await serve(observeHttp(guard.wrap((request) => app.fetch(request)), config), { ...config, reusePort: worker !== undefined });
  const metricsHandle = await startMetricsServer(
    worker !== undefined && config.METRICS_PORT ? { ...config, METRICS_PORT: config.METRICS_PORT + worker } : config,
  );
  warm = await warmUp(store, buildApp({ ...ctx, subscriptions: inertSubscriptions(subscriptions) }, health), config);
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${handle.port}`,
    port: handle.port,
    metricsPort: metricsHandle?.port,
    subscriptions,
    reloadAuth: () => guard.reload(),
    stop: () =>
      (stopping ??= (async () => {
        draining = true;
        clearInterval(sweeper);
        await retention.stop();
        guard.close();
        // End live reads first so their clients reconnect to another instance, then let
        // in-flight requests and queued appends finish before the pool closes.
        shutdown.abort();
        await handle.stop(config.SHUTDOWN_GRACE_MS);
        await subscriptions.stop();
        await metricsHandle?.stop(0);
        unobserve();
        await store.drained();
        await notifier.stop();
        await store.standbyReads?.close();
        await db.close();
      })()),
  };
}

/** Store.warmUp, then the app's own traffic (http/warm-up.ts); a failure is logged, and the instance serves unwarmed. */
async function warmUp(store: Store, app: App, config: Config): Promise<WarmUpReport | { error: string }> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A database that stalls the warm-up (a lock held on a hot table, a slow disk) must not keep
  // the instance out of the load balancer for good: past the cap it serves unwarmed.
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`warm-up still running after ${WARM_UP_CAP_MS} ms`)), WARM_UP_CAP_MS);
  });
  try {
    return await Promise.race([warmUpSteps(store, app, config, started), cap]);
  } catch (err) {
    log.error({ err }, "warm-up failed; serving unwarmed");
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Longest an instance stays unready for its warm-up (measured: 0.5-2 s on a loaded 2-core machine). */
const WARM_UP_CAP_MS = 15_000;

async function warmUpSteps(store: Store, app: App, config: Config, started: number): Promise<WarmUpReport> {
  const connections = await store.warmUp();
  // Embedded PGlite (one process, development) is not put behind a load balancer, and
  // the traffic took it 6 s on a loaded 2-core machine: its one connection is prepared only.
  const traffic = store.db.kind === "postgres" && config.WARM_UP_APPENDS > 0;
  const requests = traffic ? await warmUpTraffic(app, config, config.WARM_UP_APPENDS) : 0;
  const report = { connections, requests, ms: Math.round(performance.now() - started) };
  log.info(report, "warmed up");
  return report;
}
