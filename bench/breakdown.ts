// Where an append's time and CPU go (bench/README.md, "Where an append's time goes").
// Usage: bun bench/breakdown.ts   (Postgres as for the bench; wrk on PATH; ~1.5 minutes)
//
// Five measurements, one after another, each with wrk (64 connections, 100-byte appends
// over 1,000 streams) or an equivalent in-process load:
//   1. the real server (separate process): client latency, the server's own timings from
//      /metrics (queue wait, group round trip, handler time), CPU per append of the server
//      and of Postgres, appends per group;
//   2. the store alone, in this process: 64 loops calling Store.append (no HTTP);
//   3. the HTTP stack alone, in this process: the whole server with Store.append answered
//      at once (nothing stored);
//   4. Bun.serve alone, in this process: a handler that reads the body and answers 204;
//   5. Postgres alone: pgbench's single-row INSERT transactions, and the WAL flush time.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadConfig } from "../src/settings.ts";
import { configureLogging } from "../src/observability/log.ts";
import { startServer } from "../src/server.ts";
import { Store } from "../src/store/index.ts";
import { openDb } from "../src/store/driver/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { freePort, spawnServer } from "../test/support/spawn-server.ts";
import { createStreams } from "./lib/http.ts";
import { databaseUrl, dropSchema, ensureDatabase } from "./lib/pg.ts";
import { cpuSeconds, postgresCpu } from "./lib/proc.ts";
import { runWrk } from "./lib/wrk.ts";

const SECONDS = Number(process.env.BREAKDOWN_SECONDS ?? 10);
const STREAMS = 1000;
const names = Array.from({ length: STREAMS }, (_, i) => `s${i}`);
const wrkOpts = {
  script: "append" as const,
  threads: 1,
  connections: 64,
  env: { BENCH_STREAMS: String(STREAMS), BENCH_PREFIX: "s", BENCH_BODY_BYTES: "100" },
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const out: Record<string, unknown> = {};

const sum = (pids: number[]) => pids.reduce((s, p) => s + cpuSeconds(p), 0);

/** Postgres CPU between two samples (backends alive at the second one). */
function postgresSince(before: Map<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of postgresCpu()) total += cpu - (before.get(pid) ?? 0);
  return total;
}

/** Runs wrk against url and returns requests/s, p50 and the CPU the given pids and Postgres used per request. */
async function load(url: string, pids: () => number[]) {
  await runWrk({ ...wrkOpts, url, seconds: 2 });
  const before = sum(pids());
  const pgBefore = postgresCpu();
  const w = await runWrk({ ...wrkOpts, url, seconds: SECONDS });
  const cpu = sum(pids()) - before;
  const pg = postgresSince(pgBefore);
  const ok = w.requests - w.errors.status;
  return { perSecond: round(ok / (w.duration_us / 1e6), 0), p50Ms: round(w.latency_us.p50 / 1000, 2), cpuUs: round((cpu * 1e6) / ok), pgUs: round((pg * 1e6) / ok), requests: ok };
}

await ensureDatabase();

// 1. The real server.
{
  const schema = "bench_breakdown";
  await dropSchema(schema);
  const s = await spawnServer({ databaseUrl: databaseUrl(), schema, quiet: true, warmUp: true, env: { LOG_LEVEL: "warn" } });
  await createStreams(s.url, names, "application/octet-stream");
  const before = await (await fetch(`${s.url}/metrics`)).text();
  const m = await load(s.url, () => [s.proc.pid!]);
  const after = await (await fetch(`${s.url}/metrics`)).text();
  // Means over the measured run only: the differences of the sums and counts.
  const delta = (name: string, labels = "") => {
    const get = (t: string, suffix: string) => Number(t.split("\n").find((l) => l.startsWith(`${name}_${suffix}${labels} `))?.split(" ").pop() ?? 0);
    return (get(after, "sum") - get(before, "sum")) / (get(after, "count") - get(before, "count"));
  };
  out.server = {
    ...m,
    serverMs: round(delta("ds_http_request_duration_seconds", '{operation="append"}') * 1000, 2),
    queueWaitMs: round(delta("ds_append_queue_wait_seconds") * 1000, 2),
    groupRoundTripMs: round(delta("ds_append_group_commit_seconds") * 1000, 2),
    appendsPerGroup: round(delta("ds_append_group_size"), 1),
  };
  await s.stop();
  await dropSchema(schema);
}

// 2. The store alone (this process), 64 concurrent callers.
{
  const schema = "bench_breakdown_store";
  await dropSchema(schema);
  const db = await openDb({ databaseUrl: databaseUrl(), schema, poolSize: 10 });
  await migrate(db);
  const store = new Store(db, {});
  for (const n of names) {
    await store.create({ path: `/v1/stream/${n}`, contentType: "application/octet-stream", isJson: false, contentTypeGiven: true, closed: false, ttlSeconds: null, expiresAt: null });
  }
  const body = new Uint8Array(100).fill(120);
  const run = async (ms: number) => {
    let n = 0;
    const until = performance.now() + ms;
    const loop = async () => {
      while (performance.now() < until) {
        await store.append({ path: `/v1/stream/s${Math.floor(Math.random() * STREAMS)}`, contentType: "application/octet-stream", body, messages: null, close: false, streamSeq: null });
        n++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, loop));
    return n;
  };
  await run(2000);
  const c0 = process.cpuUsage();
  const pg0 = postgresCpu();
  const t0 = performance.now();
  const n = await run(SECONDS * 1000);
  const c = process.cpuUsage(c0);
  out.storeOnly = {
    perSecond: round(n / ((performance.now() - t0) / 1000), 0),
    cpuUs: round((c.user + c.system) / n),
    pgUs: round((postgresSince(pg0) * 1e6) / n),
  };
  await db.close();
  await dropSchema(schema);
}

// 3. The HTTP stack alone: the real server in this process, appends answered at once.
{
  const original = Store.prototype.append;
  Store.prototype.append = () => Promise.resolve({ status: 204, tail: 100, closed: false });
  const port = await freePort();
  const schema = "bench_breakdown_http";
  await dropSchema(schema);
  const config = loadConfig({ ...process.env, PORT: String(port), HOST: "127.0.0.1", DATABASE_URL: databaseUrl(), DATABASE_SCHEMA: schema, LOG_LEVEL: "warn" });
  configureLogging(config);
  const server = await startServer(config);
  await createStreams(server.url, names, "application/octet-stream");
  out.httpOnly = await load(server.url, () => [process.pid]);
  await server.stop();
  Store.prototype.append = original;
  await dropSchema(schema);
}

// 4. Bun.serve alone.
{
  const bare = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      await req.arrayBuffer();
      return new Response(null, { status: 204, headers: { "Stream-Next-Offset": "0000000000000000_0000000000000100" } });
    },
  });
  out.bunServeOnly = await load(`http://127.0.0.1:${bare.port}`, () => [process.pid]);
  bare.stop(true);
}

// 5. Postgres alone: pgbench ceiling and the WAL flush.
{
  const { runPgbench } = await import("./lib/pgbench.ts");
  const pg = await runPgbench({ clients: 64, seconds: SECONDS, streams: STREAMS, bodyBytes: 100 });
  out.pgbench = { tps: round(pg.tps, 0), latencyMsMean: pg.latencyMsMean };
  const tool = process.env.PG_TEST_FSYNC ?? "/usr/lib/postgresql/15/bin/pg_test_fsync";
  const r = spawnSync(tool, ["-s", "2", "-f", join(process.env.TMPDIR ?? "/tmp", "breakdown-fsync.tmp")], { encoding: "utf8" });
  const line = r.stdout?.split("\n").find((l) => l.trim().startsWith("fdatasync"));
  out.walFlushUs = line ? Number(/([\d.]+) usecs\/op/.exec(line)?.[1]) : "pg_test_fsync not available";
}

console.log(JSON.stringify(out, null, 2));
process.exit(0);
