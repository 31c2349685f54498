// Issue 28, item 6: (a) 1M State Protocol messages over 10k keys compacted: time, rows
// removed, final size; (b) append throughput while retention and compaction passes run, as a
// ratio to the same load without them, measured in the same run (interleaved rounds).
// Not part of `npm run bench`: run alone on a quiet machine.
//   DATABASE_URL=postgres://... bun bench/retention.ts [--quick] [--only=compaction|appends]
//     [--interval=1000] [--rounds=5] [--round-ms=10000]
// Without DATABASE_URL it runs on in-memory PGlite (for a smoke run only).
import { splitJsonMessages } from "../src/protocol/json.ts";
import { NO_POLICY } from "../src/protocol/retention.ts";
import { openDb, sql } from "../src/store/driver/db.ts";
import { Store } from "../src/store/index.ts";
import { migrate } from "../src/store/migrate.ts";
import { RetentionRunner } from "../src/retention/runner.ts";
import { RetentionRules } from "../src/retention/rules.ts";
import { readFileSync } from "node:fs";
import { treeCpuSeconds } from "./lib/proc.ts";

const quick = process.argv.includes("--quick");
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
const MESSAGES = quick ? 20_000 : 1_000_000;
const KEYS = quick ? 200 : 10_000;
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const ROUND_MS = arg("round-ms", quick ? 1_000 : 10_000);
const ROUNDS = arg("rounds", quick ? 2 : 5);
/** RETENTION_INTERVAL_MS of the passes in (b). */
const INTERVAL_MS = arg("interval", 1_000);
const WRITERS = 32;
const STREAMS = 100;

/** Counts what its passes removed. */
class CountingRunner extends RetentionRunner {
  removed = 0;
  passes = 0;
  override async pass() {
    const r = await super.pass();
    this.removed += r.rows;
    this.passes++;
    return r;
  }
}

const schema = `bench_ret_${Date.now().toString(36)}`;
const url = process.env.DATABASE_URL;
const db = await openDb(url ? { databaseUrl: url, schema, poolSize: 16 } : { dataDir: "memory://", schema: "public", poolSize: 1 });
await migrate(db);
const store = new Store(db);
const enc = new TextEncoder();
const base = { contentTypeGiven: true, ttlSeconds: null, expiresAt: null, closed: false, units: [] };

async function appendJson(path: string, messages: unknown[]): Promise<void> {
  const body = enc.encode(JSON.stringify(messages));
  await store.append({ path, contentType: "application/json", body, messages: splitJsonMessages(body, { allowEmptyArray: false }), close: false, streamSeq: null });
}

// (a) compaction of one large stream
if (only === undefined || only === "compaction") {
  const path = "/v1/stream/bench/state";
  await store.create({ ...base, path, contentType: "application/json", isJson: true, retention: { ...NO_POLICY, compaction: "state" } });
  const ops = ["insert", "update", "upsert"];
  for (let i = 0; i < MESSAGES; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, MESSAGES - i) }, (_, j) => ({
      type: "item", key: `k${(i + j) % KEYS}`, value: { n: i + j, pad: "x".repeat(40) }, headers: { operation: ops[(i + j) % 3] },
    }));
    await appendJson(path, batch);
  }
  const size = async () => {
    const r = await db.rows<{ rows: unknown; bytes: unknown }>(sql`SELECT count(*) AS rows, coalesce(sum(octet_length(data)), 0) AS bytes
      FROM ds_chunks WHERE stream_id = (SELECT id FROM ds_streams WHERE path = ${path})`);
    return { rows: Number(r[0].rows), bytes: Number(r[0].bytes) };
  };
  const before = await size();
  const runner = new RetentionRunner(db, new RetentionRules([]), { intervalMs: 0, deleteGraceMs: 0 });
  const t0 = performance.now();
  const result = await runner.pass();
  const seconds = (performance.now() - t0) / 1000;
  const after = await size();
  console.log(JSON.stringify({ scenario: "compaction", messages: MESSAGES, keys: KEYS, seconds, removedRows: result.rows, before, after }));
}

// (b) append throughput with and without the passes, interleaved rounds in one run. Rounds
// come in pairs, alternately plain-first and passes-first, after one warm-up pair, so drift
// of a shared machine falls on both sides; the ratio is the median of the pairs' ratios.
if (only === undefined || only === "appends") {
  const paths = Array.from({ length: STREAMS }, (_, i) => `/v1/stream/bench/load-${i}`);
  for (const [i, path] of paths.entries()) {
    const compacted = i % 2 === 0;
    await store.create({
      ...base, path, contentType: "application/json", isJson: true,
      retention: compacted ? { ...NO_POLICY, compaction: "state" } : { ...NO_POLICY, maxBytes: 64 * 1024 },
    });
  }
  // CPU per append (this process and the whole cluster, when it runs here and its data
  // directory is readable): on a machine shared with other work, throughput follows how much
  // CPU the run gets, while CPU per append is what retention adds.
  const postmaster = await (async () => {
    try {
      const dir = (await db.rows<{ setting: string }>(sql`SELECT setting FROM pg_settings WHERE name = 'data_directory'`))[0].setting;
      return Number(readFileSync(`${dir}/postmaster.pid`, "utf8").split("\n")[0]);
    } catch {
      return undefined;
    }
  })();
  const cpuNow = () => {
    const own = process.cpuUsage();
    return (own.user + own.system) / 1e6 + (postmaster ? treeCpuSeconds(postmaster) : 0);
  };
  const round = async (withPasses: boolean): Promise<{ rate: number; removed: number; passes: number; cpuUs: number }> => {
    const cpu0 = cpuNow();
    const runner = new CountingRunner(db, new RetentionRules([]), { intervalMs: INTERVAL_MS, deleteGraceMs: 0 });
    if (withPasses) runner.start();
    let done = 0;
    const end = Date.now() + ROUND_MS;
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; Date.now() < end; i++) {
        const path = paths[(w * 7 + i) % STREAMS];
        await appendJson(path, [{ type: "t", key: `k${i % 50}`, value: { i }, headers: { operation: "upsert" } }]);
        done++;
      }
    }));
    await runner.stop();
    return { rate: done / (ROUND_MS / 1000), removed: runner.removed, passes: runner.passes, cpuUs: ((cpuNow() - cpu0) / done) * 1e6 };
  };
  const plain: number[] = [];
  const passes: number[] = [];
  const removed: number[] = [];
  const ratios: number[] = [];
  const cpuPlain: number[] = [];
  const cpuPasses: number[] = [];
  for (let r = -1; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    const got = new Map<boolean, Awaited<ReturnType<typeof round>>>();
    for (const withPasses of order) got.set(withPasses, await round(withPasses));
    if (r < 0) continue; // warm-up pair
    plain.push(got.get(false)!.rate);
    passes.push(got.get(true)!.rate);
    removed.push(got.get(true)!.removed);
    ratios.push(got.get(true)!.rate / got.get(false)!.rate);
    cpuPlain.push(Math.round(got.get(false)!.cpuUs));
    cpuPasses.push(Math.round(got.get(true)!.cpuUs));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(JSON.stringify({
    scenario: "appends-with-passes", writers: WRITERS, streams: STREAMS, intervalMs: INTERVAL_MS, roundMs: ROUND_MS,
    plain, passes, removedPerPassesRound: removed, ratios, ratio: median(ratios), target: 0.9,
    // CPU µs per append (this process + the cluster), and plain over passes: the throughput
    // ratio a machine with nothing else to run would see when CPU-bound
    cpuUsPerAppend: postmaster ? { plain: cpuPlain, passes: cpuPasses, ratio: median(cpuPlain) / median(cpuPasses) } : undefined,
  }));
}

await store.drained();
if (url) await db.rows(sql.raw(`DROP SCHEMA "${schema}" CASCADE`));
await db.close();
