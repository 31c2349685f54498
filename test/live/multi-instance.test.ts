// Live reads across instances on one Postgres: real server processes, real LISTEN/NOTIFY.
//
//   1. an append on A wakes a long-poll on B and an SSE reader on C, through NOTIFY only
//   2. B's listener connection is killed (pg_terminate_backend) while a long-poll waits:
//      no wake-up is lost, and NOTIFY wakes readers again after the reconnect
//   3. one append wakes 1,000 concurrent live readers (500 long-poll + 500 SSE) on B
//   4. SIGTERM on B: SSE ends cleanly, the long-poll gets a 204, the process exits 0,
//      and an append in flight is either committed (2xx) or not acknowledged
//
// BACKSTOP_MS and LONG_POLL_TIMEOUT_MS are set far above every latency bound asserted
// here, so neither the backstop timer nor a long-poll timeout can pass for a wake-up.
// Needs DATABASE_URL; without it every test is skipped (it never passes vacuously).
// Live reads use raw HTTP/1.1 (test/support/http1.ts): exact framing (a chunked terminator
// tells a clean end from a reset) and no client-side connection pool capping 1,000 readers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import postgres from "postgres";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { type RawRequest, rawGet } from "../support/http1.ts";
import { until } from "../support/poll.ts";
import type { SpawnedServer } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
const SKIP_REASON = "set DATABASE_URL to run the multi-instance live tests against real Postgres";
if (!DATABASE_URL) console.warn(`test/live/multi-instance.test.ts: SKIPPED — ${SKIP_REASON}`);

const SCHEMA = `live_${process.pid}_${Date.now().toString(36)}`;
// The listener's last statement is its LISTEN or a heartbeat (pg_stat_activity.query).
const LISTENER_QUERIES = [`LISTEN "ds_${SCHEMA}_streams"`, "SELECT 1"];
const LISTENER_APP = `listen ds_${SCHEMA}_streams`;
const LONG_POLL_TIMEOUT_MS = 20_000;
const BACKSTOP_MS = 30_000;
const SHUTDOWN_GRACE_MS = 10_000;
const INSTANCE_ENV = {
  LONG_POLL_TIMEOUT_MS: String(LONG_POLL_TIMEOUT_MS),
  BACKSTOP_MS: String(BACKSTOP_MS),
  SSE_MAX_LIFETIME_MS: "120000",
  SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
};

/** A NOTIFY wake-up: far below BACKSTOP_MS and LONG_POLL_TIMEOUT_MS. */
const WAKE_BOUND_MS = 1_000;
/** Listener killed: postgres.js reconnects and re-listens; allow that, but bounded. */
const RECONNECT_WAKE_BOUND_MS = 5_000;
/** 1,000 readers woken by one append. */
const FANOUT_BOUND_MS = 5_000;
const FANOUT_LONG_POLL = 500;
const FANOUT_SSE = 500;
/** Shutdown: live reads answered, and the process gone. */
const SHUTDOWN_LIVE_BOUND_MS = 2_000;
const SHUTDOWN_EXIT_BOUND_MS = 5_000;
/** Per-test and per-hook timeouts (bun's default is 5 s): every wait inside has its own, smaller bound. */
const TEST_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------
// small helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}


function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

let streamCounter = 0;
const streamPath = (name: string) => `/v1/stream/live-${name}-${streamCounter++}-${Date.now().toString(36)}`;

/** Creates a text stream on `server`, returns its tail offset. */
async function createStream(server: SpawnedServer, path: string): Promise<string> {
  const res = await fetch(server.url + path, { method: "PUT", headers: { "Content-Type": "text/plain" } });
  expect(res.status).toBe(201);
  const tail = res.headers.get("stream-next-offset");
  expect(tail).toBeTruthy();
  return tail!;
}

async function append(server: SpawnedServer, path: string, body: string, signal?: AbortSignal): Promise<Response> {
  return fetch(server.url + path, { method: "POST", headers: { "Content-Type": "text/plain" }, body, signal });
}

async function readAll(server: SpawnedServer, path: string): Promise<string> {
  let offset = "-1";
  let out = "";
  for (let i = 0; i < 1000; i++) {
    const res = await fetch(`${server.url}${path}?offset=${encodeURIComponent(offset)}`);
    expect(res.status).toBe(200);
    out += await res.text();
    offset = res.headers.get("stream-next-offset")!;
    if (res.headers.get("stream-up-to-date") === "true") return out;
  }
  throw new Error("readAll: stream did not end");
}

interface SseEvent {
  type: string;
  data: string;
  at: number;
}

/** An SSE reader: parses events as they arrive. */
function sseReader(port: number, path: string) {
  const events: SseEvent[] = [];
  const waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  let pending = "";
  const onBody = (text: string, at: number) => {
    pending += text;
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(pending);
      if (!m) break;
      const block = pending.slice(0, m.index);
      pending = pending.slice(m.index + m[0].length);
      let type = "message";
      const data: string[] = [];
      let any = false;
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (line === "" || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? "" : line.slice(i + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") type = value;
        else if (field === "data") {
          data.push(value);
          any = true;
        }
      }
      if (!any) continue;
      const ev = { type, data: data.join("\n"), at };
      events.push(ev);
      for (const w of [...waiters]) {
        if (w.pred(ev)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(ev);
        }
      }
    }
  };
  const req = rawGet(port, path, onBody);
  return {
    req,
    events,
    /** The first event (already seen or future) matching pred. */
    next(pred: (e: SseEvent) => boolean): Promise<SseEvent> {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

/**
 * Waits until `server` holds this many live readers of the stream at `path` (its admin view
 * counts them per stream), instead of sleeping and hoping they have subscribed.
 */
async function readersOn(server: SpawnedServer, path: string, want: { longPoll?: number; sse?: number }): Promise<void> {
  const name = path.slice("/v1/stream/".length);
  await until(
    async () => {
      const { liveReaders } = (await (await fetch(`${server.url}/v1/admin/streams/${name}`)).json()) as {
        liveReaders: { sse: number; longPoll: number };
      };
      return liveReaders.longPoll >= (want.longPoll ?? 0) && liveReaders.sse >= (want.sse ?? 0) ? true : undefined;
    },
    10_000,
    `${JSON.stringify(want)} live readers of ${path}`,
  );
}

const isData = (payload: string) => (e: SseEvent) => e.type === "data" && e.data === payload;
const isControl = (e: SseEvent) => e.type === "control";

const liveUrl = (path: string, offset: string, live: "long-poll" | "sse") =>
  `${path}?offset=${encodeURIComponent(offset)}&live=${live}`;

// ---------------------------------------------------------------------------------------
// finding one instance's LISTEN connection in pg_stat_activity

/** Local TCP ports of the sockets a process holds open (Linux /proc). */
function tcpPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) ports.add(parseInt(cols[1].split(":").pop()!, 16));
    }
  }
  return ports;
}

interface Backend {
  pid: number;
  client_port: number;
  state: string;
  query: string;
}

type Sql = ReturnType<typeof postgres>;

/** The listener backends of all instances on this schema. */
async function listenerBackends(sql: Sql): Promise<Backend[]> {
  return (await sql<Backend[]>`
    SELECT pid, client_port, state, query FROM pg_stat_activity
    WHERE application_name = ${LISTENER_APP} AND datname = current_database()`) as Backend[];
}

/**
 * The one listener backend whose client socket belongs to `server`'s process; undefined while
 * there is none, or more than one: while a reconnect is under way a new backend shows before
 * it has run LISTEN (seen under load). A listener that kept two connections never settles, and
 * the caller's wait fails.
 */
async function listenerOf(sql: Sql, server: SpawnedServer): Promise<Backend | undefined> {
  const ports = tcpPortsOf(server.proc.pid!);
  const mine = (await listenerBackends(sql)).filter((b) => ports.has(b.client_port));
  return mine.length === 1 ? mine[0] : undefined;
}

// ---------------------------------------------------------------------------------------

describe.skipIf(!DATABASE_URL)(`live reads across instances on Postgres (${DATABASE_URL ? SCHEMA : SKIP_REASON})`, () => {
  let cluster: Cluster | undefined;
  let sql: Sql | undefined;
  let A: SpawnedServer, B: SpawnedServer, C: SpawnedServer;
  const logs = new Map<SpawnedServer, string[]>();
  const logOf = (s: SpawnedServer) => (logs.get(s) ?? []).join("");

  beforeAll(async () => {
    if (!DATABASE_URL) return;
    sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
    cluster = await startCluster({
      databaseUrl: DATABASE_URL,
      schema: SCHEMA,
      count: 3,
      env: INSTANCE_ENV,
      quiet: !process.env.LIVE_TEST_VERBOSE,
    });
    [A, B, C] = cluster.instances;
    for (const s of cluster.instances) {
      const buf: string[] = [];
      logs.set(s, buf);
      s.proc.stdout!.on("data", (b: Buffer) => buf.push(b.toString()));
      s.proc.stderr!.on("data", (b: Buffer) => buf.push(b.toString()));
    }
    // Every instance is listening before a test relies on NOTIFY.
    await until(async () => ((await listenerBackends(sql!)).length >= 3 ? true : undefined), 10_000, "3 listener backends");
  }, TEST_TIMEOUT_MS);

  afterAll(async () => {
    // SIGKILL: cleanup must be bounded even when a graceful shutdown would hang.
    await Promise.all((cluster?.instances ?? []).map((s) => withTimeout(s.stop("SIGKILL"), 10_000, "kill instance").catch(() => {})));
    if (sql) {
      try {
        await withTimeout(sql.unsafe(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`), 20_000, `drop schema ${SCHEMA}`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    }
  }, TEST_TIMEOUT_MS);

  test("an append on A wakes a long-poll on B and an SSE reader on C through NOTIFY", async () => {
    const path = streamPath("fanout3");
    const tail = await createStream(A, path);

    const sse = sseReader(C.port, liveUrl(path, tail, "sse"));
    const lp = rawGet(B.port, liveUrl(path, tail, "long-poll"));
    try {
      // Both readers wait on their instance before the append (an append earlier would still
      // be seen on a re-check, but would not test the wake-up).
      const head = await withTimeout(sse.req.head, 5_000, "SSE response head");
      expect(head.status).toBe(200);
      expect(head.headers["content-type"]).toContain("text/event-stream");
      const ctl = JSON.parse((await withTimeout(sse.next(isControl), 5_000, "initial SSE control event")).data);
      expect(ctl.streamNextOffset).toBe(tail);
      expect(ctl.upToDate).toBe(true);
      await Promise.all([readersOn(B, path, { longPoll: 1 }), readersOn(C, path, { sse: 1 })]);

      const payload = `hello from A ${Date.now()}`;
      const t0 = now();
      const res = await append(A, path, payload);
      const tCommitted = now();
      expect(res.status).toBe(204);
      const next = res.headers.get("stream-next-offset")!;

      const [lpRes, ev] = await withTimeout(
        Promise.all([lp.done, sse.next(isData(payload))]),
        LONG_POLL_TIMEOUT_MS / 2,
        "long-poll on B and SSE data on C",
      );
      expect(lpRes.error).toBeUndefined();
      expect(lpRes.complete).toBe(true);
      expect(lpRes.status).toBe(200);
      expect(lpRes.body).toBe(payload);
      expect(lpRes.headers["stream-next-offset"]).toBe(next);
      expect(lpRes.headers["stream-up-to-date"]).toBe("true");
      expect(lpRes.headers["stream-cursor"]).toBeTruthy();
      const ctl2 = JSON.parse((await withTimeout(sse.next((e) => isControl(e) && JSON.parse(e.data).streamNextOffset === next), 2_000, "SSE control after data")).data);
      expect(ctl2.upToDate).toBe(true);

      const lpLatency = lpRes.endedAt - t0;
      const sseLatency = ev.at - t0;
      console.log(
        `[1] append on A committed in ${ms(tCommitted - t0)}; long-poll on B woke after ${ms(lpLatency)}, SSE on C after ${ms(sseLatency)} (bound ${WAKE_BOUND_MS} ms; BACKSTOP_MS=${BACKSTOP_MS})`,
      );
      expect(lpLatency).toBeLessThan(WAKE_BOUND_MS);
      expect(sseLatency).toBeLessThan(WAKE_BOUND_MS);
    } finally {
      lp.destroy();
      sse.req.destroy();
    }
  }, TEST_TIMEOUT_MS);

  test.skipIf(process.platform !== "linux")(
    "killing B's listener connection loses no wake-up, and NOTIFY wakes B again after the reconnect",
    async () => {
      const path = streamPath("reconnect");
      const tail = await createStream(A, path);

      const before = await until(() => listenerOf(sql!, B), 5_000, "B's listener backend");
      expect(before.state).toBe("idle");
      expect(LISTENER_QUERIES).toContain(before.query);
      const others = (await listenerBackends(sql!)).filter((b) => b.pid !== before.pid).map((b) => b.pid);

      const lp = rawGet(B.port, liveUrl(path, tail, "long-poll"));
      let lp2: RawRequest | undefined;
      try {
        await readersOn(B, path, { longPoll: 1 });

        // Kill B's listener, then append on A at once: the NOTIFY may land while B has no
        // listener; the reconnect's wakeAll (or the re-LISTEN) must still deliver it.
        const [{ terminated }] = await sql!`SELECT pg_terminate_backend(${before.pid}) AS terminated`;
        expect(terminated).toBe(true);
        const t0 = now();
        const payload = `after the kill ${Date.now()}`;
        const res = await append(A, path, payload);
        expect(res.status).toBe(204);
        const tail2 = res.headers.get("stream-next-offset")!;

        const r = await withTimeout(lp.done, RECONNECT_WAKE_BOUND_MS + 2_000, "long-poll on B after its listener was killed");
        expect(r.error).toBeUndefined();
        expect(r.status).toBe(200);
        expect(r.body).toBe(payload);
        const wokeAfter = r.endedAt - t0;

        // B listens again, on a new backend; A and C kept theirs.
        const after = await until(
          async () => {
            const b = await listenerOf(sql!, B);
            return b && b.pid !== before.pid ? b : undefined;
          },
          RECONNECT_WAKE_BOUND_MS,
          "B's new listener backend",
        );
        const reconnectedAfter = now() - t0;
        expect(LISTENER_QUERIES).toContain(after.query);
        const stillThere = (await listenerBackends(sql!)).map((b) => b.pid);
        for (const pid of others) expect(stillThere).toContain(pid);
        const health = await fetch(`${B.url}/healthz`);
        expect(health.status).toBe(200);

        // A long-poll that starts after the reconnect is woken by NOTIFY again, fast.
        lp2 = rawGet(B.port, liveUrl(path, tail2, "long-poll"));
        await readersOn(B, path, { longPoll: 1 });
        const payload2 = `after the reconnect ${Date.now()}`;
        const t1 = now();
        expect((await append(A, path, payload2)).status).toBe(204);
        const r2 = await withTimeout(lp2.done, WAKE_BOUND_MS + 2_000, "long-poll on B after the reconnect");
        expect(r2.status).toBe(200);
        expect(r2.body).toBe(payload2);
        const wokeAfter2 = r2.endedAt - t1;

        console.log(
          `[2] listener pid ${before.pid} killed; waiting long-poll on B got the append after ${ms(wokeAfter)} (bound ${RECONNECT_WAKE_BOUND_MS} ms); ` +
            `new listener pid ${after.pid} seen by ${ms(reconnectedAfter)}; a long-poll after the reconnect woke in ${ms(wokeAfter2)} (bound ${WAKE_BOUND_MS} ms)`,
        );
        expect(wokeAfter).toBeLessThan(RECONNECT_WAKE_BOUND_MS);
        expect(wokeAfter2).toBeLessThan(WAKE_BOUND_MS);
      } finally {
        lp.destroy();
        lp2?.destroy();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(`one append on A wakes ${FANOUT_LONG_POLL + FANOUT_SSE} concurrent live readers on B`, async () => {
    const path = streamPath("thousand");
    const tail = await createStream(A, path);
    const lps: RawRequest[] = [];
    const sses: ReturnType<typeof sseReader>[] = [];
    try {
      // Open in batches so the accept queue never overflows.
      for (let i = 0; i < Math.max(FANOUT_LONG_POLL, FANOUT_SSE); i += 100) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(i + 100, FANOUT_LONG_POLL); j++) {
          const r = rawGet(B.port, liveUrl(path, tail, "long-poll"));
          lps.push(r);
          batch.push(r.sent);
        }
        for (let j = i; j < Math.min(i + 100, FANOUT_SSE); j++) {
          const s = sseReader(B.port, liveUrl(path, tail, "sse"));
          sses.push(s);
          batch.push(s.next(isControl));
        }
        await withTimeout(Promise.all(batch), 20_000, "opening live readers");
      }
      await readersOn(B, path, { longPoll: FANOUT_LONG_POLL, sse: FANOUT_SSE });
      expect(lps.filter((r) => r.isDone()).length).toBe(0); // no long-poll answered before the append
      expect(sses.filter((s) => s.req.isDone()).length).toBe(0);

      const payload = `one append for ${FANOUT_LONG_POLL + FANOUT_SSE} readers ${Date.now()}`;
      const t0 = now();
      const res = await append(A, path, payload);
      const tCommitted = now();
      expect(res.status).toBe(204);

      const lpResults = await withTimeout(Promise.all(lps.map((r) => r.done)), FANOUT_BOUND_MS + 5_000, "all long-polls");
      const sseEvents = await withTimeout(Promise.all(sses.map((s) => s.next(isData(payload)))), FANOUT_BOUND_MS + 5_000, "all SSE data events");

      const bad = lpResults.filter((r) => r.status !== 200 || r.body !== payload || r.error);
      expect(bad.map((r) => ({ status: r.status, body: r.body, error: r.error }))).toEqual([]);
      const lpLat = lpResults.map((r) => r.endedAt - t0).sort((a, b) => a - b);
      const sseLat = sseEvents.map((e) => e.at - t0).sort((a, b) => a - b);
      const all = [...lpLat, ...sseLat].sort((a, b) => a - b);
      const line = (name: string, xs: number[]) =>
        `${name} n=${xs.length} p50=${ms(percentile(xs, 50))} p99=${ms(percentile(xs, 99))} max=${ms(xs[xs.length - 1])}`;
      console.log(
        `[3] append committed in ${ms(tCommitted - t0)}; wake latency from POST: ${line("all", all)}; ${line("long-poll", lpLat)}; ${line("sse", sseLat)} (bound ${FANOUT_BOUND_MS} ms)`,
      );
      expect(all.length).toBe(FANOUT_LONG_POLL + FANOUT_SSE);
      expect(all[all.length - 1]).toBeLessThan(FANOUT_BOUND_MS);
    } finally {
      for (const r of lps) r.destroy();
      for (const s of sses) s.req.destroy();
    }
  }, TEST_TIMEOUT_MS);

  test("SIGTERM on B: SSE ends cleanly, the long-poll gets 204, in-flight appends are committed or unacknowledged, exit 0", async () => {
    const path = streamPath("shutdown");
    const tail = await createStream(A, path);
    const writes = streamPath("shutdown-writes");
    await createStream(A, writes);

    const sse = sseReader(B.port, liveUrl(path, tail, "sse"));
    const lp = rawGet(B.port, liveUrl(path, tail, "long-poll"));
    const exit = new Promise<{ code: number | null; signal: string | null; at: number }>((r) =>
      B.proc.once("exit", (code, signal) => r({ code, signal, at: now() })),
    );
    // The test holds the row lock of the `writes` stream (appends lock it FOR UPDATE), so
    // appends sent to B before SIGTERM are provably in flight inside B when it arrives.
    const lock = await sql!.reserve();
    let locked = false;
    try {
      expect((await withTimeout(sse.req.head, 5_000, "SSE head")).status).toBe(200);
      await withTimeout(sse.next(isControl), 5_000, "initial SSE control event");
      await readersOn(B, path, { longPoll: 1, sse: 1 });

      await lock`BEGIN`;
      locked = true;
      const rows = await lock`SELECT id FROM ${lock(SCHEMA)}.ds_streams WHERE path = ${writes} FOR UPDATE`;
      expect(rows.length).toBe(1);

      type Outcome = { payload: string; status: number | string; at: number };
      const inflight: Promise<Outcome>[] = [];
      const fire = (payload: string) =>
        inflight.push(
          append(B, writes, payload, AbortSignal.timeout(SHUTDOWN_GRACE_MS + 10_000)).then(
            async (r) => {
              await r.arrayBuffer().catch(() => {});
              return { payload, status: r.status, at: now() };
            },
            (e: Error) => ({ payload, status: `${e.name}: ${String(e.message).split(".")[0]}`, at: now() }),
          ),
        );
      const HELD = 3;
      for (let i = 0; i < HELD; i++) fire(`held${i};`);
      // B has received them: its append transaction waits on our lock.
      await until(
        async () => {
          const [{ n }] = await sql!`SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE application_name = 'pg-durable-streams' AND wait_event_type = 'Lock'`;
          return n >= 1 ? n : undefined;
        },
        5_000,
        "B's append to block on the test's row lock",
      );

      const t0 = now();
      B.proc.kill("SIGTERM");
      // Appends sent right after SIGTERM: refused or answered, never acknowledged-but-lost.
      for (let i = 0; i < 10; i++) {
        fire(`late${i};`);
        await sleep(5);
      }
      // Let the held appends go well within the shutdown grace.
      await sleep(300);
      await lock`COMMIT`;
      locked = false;

      const [lpRes, sseRes] = await withTimeout(
        Promise.all([lp.done, sse.req.done]),
        SHUTDOWN_GRACE_MS + 5_000,
        "live reads on B to end after SIGTERM",
      );
      const exited = await withTimeout(exit, SHUTDOWN_GRACE_MS + 10_000, "B to exit after SIGTERM");
      const outcomes = await withTimeout(Promise.all(inflight), SHUTDOWN_GRACE_MS + 15_000, "in-flight appends to settle");

      // Every acknowledged append is durable (read back through A), exactly once.
      const stored = (await readAll(A, writes)).split(";").filter(Boolean).map((x) => `${x};`);
      const acked = outcomes.filter((o) => typeof o.status === "number" && o.status >= 200 && o.status < 300);
      const lost = acked.filter((o) => stored.filter((x) => x === o.payload).length !== 1);
      const serverErrors = outcomes.filter((o) => typeof o.status === "number" && o.status >= 500);

      const summary = {
        longPoll: { status: lpRes.status, complete: lpRes.complete, error: lpRes.error, after: ms(lpRes.endedAt - t0) },
        sse: { complete: sseRes.complete, error: sseRes.error, after: ms(sseRes.endedAt - t0), events: sse.events.map((e) => e.type) },
        exit: { code: exited.code, signal: exited.signal, after: ms(exited.at - t0) },
        appends: outcomes.map((o) => `${o.payload} ${o.status} @${ms(o.at - t0)}`),
        stored,
      };
      console.log(`[4] SIGTERM on B: ${JSON.stringify(summary, null, 1)}`);
      if (exited.code !== 0 || lpRes.status !== 204 || !sseRes.complete || serverErrors.length) {
        console.log(`[4] B's output:\n${logOf(B)}`);
      }

      expect(lost).toEqual([]);
      expect(lpRes.error).toBeUndefined();
      expect(lpRes.status).toBe(204);
      expect(lpRes.headers["stream-up-to-date"]).toBe("true");
      expect(lpRes.headers["stream-next-offset"]).toBe(tail);
      expect(lpRes.endedAt - t0).toBeLessThan(SHUTDOWN_LIVE_BOUND_MS);
      // SSE: the chunked body was terminated properly (no reset, no truncated stream).
      expect(sseRes.error).toBeUndefined();
      expect(sseRes.complete).toBe(true);
      expect(sseRes.endedAt - t0).toBeLessThan(SHUTDOWN_LIVE_BOUND_MS);
      expect(exited.signal).toBeNull();
      expect(exited.code).toBe(0);
      expect(exited.at - t0).toBeLessThan(SHUTDOWN_EXIT_BOUND_MS);
    } finally {
      if (locked) await lock`ROLLBACK`.catch(() => {});
      lock.release();
      lp.destroy();
      sse.req.destroy();
    }
  }, TEST_TIMEOUT_MS);
});
