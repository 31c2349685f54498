// Wires config, database, migrations, live notifier and the HTTP app together; serves on
// the current runtime through a thin adapter, and shuts down gracefully.
import type { Config } from "./config.ts";
import { Guard } from "./auth/guard.ts";
import { buildApp } from "./http/app.ts";
import { SseHubs } from "./http/sse-hub.ts";
import { Notifier } from "./live/notifier.ts";
import { SharedReads } from "./live/shared-reads.ts";
import { serve, type ServerHandle } from "./runtime/serve.ts";
import { openDb } from "./store/db.ts";
import { Store } from "./store/index.ts";
import { migrate } from "./store/migrate.ts";

export interface RunningServer {
  url: string;
  port: number;
  store: Store;
  notifier: Notifier;
  /** Re-reads AUTH_TOKENS_FILE (SIGHUP); throws and keeps the old keys if the file is bad. */
  reloadAuth(): string;
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  // First: a server that would refuse to be open on this address stops before touching the database.
  const guard = await Guard.create(config);
  const db = await openDb({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    schema: config.DATABASE_SCHEMA,
    poolSize: config.DATABASE_POOL_SIZE,
  });
  await migrate(db);
  const store = new Store(db, {
    appendBatchMax: config.APPEND_BATCH_MAX,
    appendConcurrency: config.APPEND_CONCURRENCY,
    appendOverlapMin: config.APPEND_OVERLAP_MIN,
  });
  const notifier = new Notifier(db, store.channel, config.BACKSTOP_MS);
  notifier.onChange((c) => store.observe(c));
  await notifier.start();
  const shutdown = new AbortController();
  let draining = false;
  const reads = new SharedReads(store, notifier);
  const sse = new SseHubs(reads, notifier, config.READ_CHUNK_BYTES);
  const app = buildApp({ store, notifier, reads, sse, config, shutdown: shutdown.signal }, () => ({
    ok: !draining && notifier.healthy,
    detail: {
      database: db.kind,
      listener: notifier.healthy ? "connected" : "down",
      draining,
      liveWaiters: notifier.waiterCount,
      sseReaders: sse.readerCount,
      appends: store.appendStats,
    },
  }));
  const sweeper =
    config.SWEEP_INTERVAL_MS > 0
      ? setInterval(() => store.sweep().catch((e) => console.error("expiry sweep failed", e)), config.SWEEP_INTERVAL_MS)
      : undefined;
  const handle: ServerHandle = await serve(guard.wrap(app.fetch), config);
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${handle.port}`,
    port: handle.port,
    store,
    notifier,
    reloadAuth: () => guard.reload(),
    stop: () =>
      (stopping ??= (async () => {
        draining = true;
        clearInterval(sweeper);
        guard.close();
        // End live reads first so their clients reconnect to another instance, then let
        // in-flight requests and queued appends finish before the pool closes.
        shutdown.abort();
        await handle.stop(config.SHUTDOWN_GRACE_MS);
        await store.drained();
        await notifier.stop();
        await db.close();
      })()),
  };
}
