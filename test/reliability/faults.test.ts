// Postgres faults under load, on a private cluster this test creates (and always drops):
// two server instances (one Bun, one Deno) share it; idempotent producers write through both,
// long-poll and SSE readers follow every stream on both; mid-load Postgres gets a fast
// restart, later an immediate-mode crash, then every backend terminated at once. Asserted:
//   - nothing acknowledged is lost or duplicated, each writer's appends are stored in order;
//   - every live reader saw exactly the stored sequence;
//   - no 500; a 503 only during an outage (until 2 s after Postgres is back), each answered
//     well under a second; no request hangs;
//   - appends and live reads resume within 2 s of pg_isready succeeding again.
// Then SIGTERM drain: an instance with idle keep-alive clients, live readers and appends in
// flight exits in about a second, not after the whole SHUTDOWN_GRACE_MS.
//
// Needs DATABASE_URL (CI's signal that Postgres tests run) and Debian's pg_createcluster;
// skipped with a warning otherwise. Never touches the shared cluster on 5432.
//   FAULT_SETTLE_MS  load time before, between and after the faults (default 4000)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { createPgCluster, type PgCluster, pgClusterUnavailable } from "../support/pg-cluster.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { expectCleanRun } from "../support/fault-checks.ts";
import { type Fault, type FaultRun, Load } from "../support/fault-load.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
const SKIP = !DATABASE_URL ? "DATABASE_URL is unset" : pgClusterUnavailable();
if (SKIP) console.warn(`test/reliability/faults.test.ts: SKIPPED (${SKIP})`);

const SETTLE_MS = Number(process.env.FAULT_SETTLE_MS ?? 4_000);
/** The bounds. */
const RESUME_BOUND_MS = 2_000;
const FAST_503_BOUND_MS = 1_000;
const DRAIN_BOUND_MS = 2_500;
const SHUTDOWN_GRACE_MS = 10_000;
const INSTANCE_ENV = {
  LONG_POLL_TIMEOUT_MS: "10000",
  SSE_MAX_LIFETIME_MS: "60000",
  SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
};

let cluster: PgCluster | undefined;
const servers: SpawnedServer[] = [];

beforeAll(async () => {
  if (!SKIP) cluster = await createPgCluster();
}, 60_000);

afterAll(async () => {
  const dir = process.env.FAULT_LOG_DIR;
  if (dir) servers.forEach((s, i) => writeFileSync(`${dir}/server-${i}-${s.port}.log`, s.output()));
  try {
    await Promise.all(servers.map((s) => s.stop("SIGKILL").catch(() => {})));
  } finally {
    cluster?.drop();
  }
}, 30_000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

/** Runs one fault; returns when Postgres accepts connections again (after being seen down). */
async function inflict(c: PgCluster, kind: Fault["kind"]): Promise<Fault> {
  const startedAt = now();
  if (kind === "all backends terminated") {
    // Postgres stays up: it accepts connections again as soon as the command is through.
    const result = await c.terminateBackends();
    if (result.code !== 0) throw new Error(`${kind} failed: ${result.output}`);
    return { kind, startedAt, readyAt: result.endedAt, commandMs: result.endedAt - result.startedAt };
  }
  const command = kind === "fast restart" ? c.restart("fast") : c.restart("immediate");
  let done: Awaited<typeof command> | undefined;
  void command.then((r) => (done = r));
  let sawDown = false;
  for (;;) {
    const t = now();
    const up = await c.ready();
    if (!up) sawDown = true;
    // A restart shorter than one probe is still a restart: then its end counts as "back".
    if (up && (sawDown || done)) {
      const result = await command;
      if (result.code !== 0) throw new Error(`${kind} failed: ${result.output}`);
      return { kind, startedAt, readyAt: sawDown ? t : result.endedAt, commandMs: result.endedAt - result.startedAt };
    }
    if (now() - startedAt > 60_000) throw new Error(`Postgres did not come back after ${kind}`);
    await sleep(20);
  }
}

describe.skipIf(!!SKIP)("Postgres faults on a private cluster", () => {
  test("fast restart and immediate crash under load: nothing acknowledged lost, readers exact, fast 503s, recovery within 2 s", async () => {
    const c = cluster!;
    const runtimes: Runtime[] = ["bun", "deno"];
    const schema = `faults_${process.pid}`;
    const instances = await Promise.all(
      runtimes.map((runtime) => spawnServer({ runtime, databaseUrl: c.url, schema, env: INSTANCE_ENV, quiet: true })),
    );
    servers.push(...instances);
    const load = new Load(instances.map((s, i) => ({ name: `${runtimes[i]}:${s.port}`, url: s.url })), ["f-0", "f-1"]);
    await load.createStreams();
    load.start();
    const watchdog = setInterval(() => console.log(`fault run progress: ${load.progress()}`), 20_000);
    await sleep(SETTLE_MS);
    const faults: Fault[] = [];
    faults.push(await inflict(c, "fast restart"));
    await sleep(SETTLE_MS);
    faults.push(await inflict(c, "immediate crash"));
    await sleep(SETTLE_MS);
    faults.push(await inflict(c, "all backends terminated"));
    await sleep(SETTLE_MS);
    const run: FaultRun = await load.finish(faults).finally(() => clearInterval(watchdog));

    console.log(load.report(run));
    const pgLog = c.log();
    if (process.env.FAULT_LOG_DIR) writeFileSync(`${process.env.FAULT_LOG_DIR}/postgres.log`, pgLog);
    const count = (re: RegExp) => pgLog.split("\n").filter((l) => re.test(l)).length;
    console.log(`  Postgres log: ${count(/deadlock detected/)} deadlocks, ${count(/still waiting for/)} lock waits over deadlock_timeout`);
    expectCleanRun(run, instances, RESUME_BOUND_MS);
    expect(run.max503Ms).toBeLessThan(FAST_503_BOUND_MS);
    await Promise.all(instances.map((s) => s.stop()));
  }, 180_000);

  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: SIGTERM with idle keep-alive clients, live readers and appends in flight drains in about a second`, async () => {
      const server = await spawnServer({ runtime, databaseUrl: cluster!.url, schema: `drain_${runtime}_${process.pid}`, env: INSTANCE_ENV, quiet: true });
      servers.push(server);
      const stream = `${server.url}/v1/stream/drain`;
      await fetch(stream, { method: "PUT", headers: { "Content-Type": "application/octet-stream" } });
      // Idle keep-alive connections: one request answered, then nothing.
      const idle = await Promise.all(Array.from({ length: 16 }, () => keepAliveSocket(server.port)));
      // Live readers parked on the instance.
      const live = [
        ...Array.from({ length: 4 }, () => fetch(`${stream}?offset=now&live=long-poll`).then((r) => r.arrayBuffer().then(() => r.status), (e) => String(e))),
        ...Array.from({ length: 4 }, () => fetch(`${stream}?offset=now&live=sse`).then((r) => r.arrayBuffer().then(() => r.status), (e) => String(e))),
      ];
      // Appenders: a steady stream of appends, so some are in flight at SIGTERM.
      let stopped = false;
      const stalls: number[] = [];
      const outcomes: Record<string, number> = {};
      const appenders = Array.from({ length: 4 }, async () => {
        while (!stopped) {
          const t0 = now();
          let outcome: string;
          try {
            const res = await fetch(stream, { method: "POST", body: "x", headers: { "Content-Type": "application/octet-stream" }, signal: AbortSignal.timeout(15_000) });
            await res.arrayBuffer();
            outcome = String(res.status);
          } catch (e) {
            outcome = (e as Error).name === "TimeoutError" ? "timeout" : "connection closed";
          }
          stalls.push(now() - t0);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          if (outcome === "connection closed") break;
        }
      });
      await sleep(1_000);
      const t0 = now();
      server.proc.kill("SIGTERM");
      const code = await new Promise<number | null>((r) => (server.proc.exitCode !== null ? r(server.proc.exitCode) : server.proc.once("exit", (c) => r(c))));
      const drainMs = now() - t0;
      stopped = true;
      await Promise.all(appenders);
      const liveOutcomes = await Promise.all(live);
      for (const s of idle) s.destroy();
      const maxStall = Math.max(...stalls);
      console.log(`${runtime} SIGTERM drain: exit ${code} after ${Math.round(drainMs)} ms (grace ${SHUTDOWN_GRACE_MS} ms); ` +
        `appends ${JSON.stringify(outcomes)}, slowest ${Math.round(maxStall)} ms; live readers ${JSON.stringify(liveOutcomes)}`);
      expect(code).toBe(0);
      expect(drainMs).toBeLessThan(DRAIN_BOUND_MS);
      expect(maxStall).toBeLessThan(DRAIN_BOUND_MS);
      expect(outcomes["500"] ?? 0).toBe(0);
      expect(outcomes.timeout ?? 0).toBe(0);
    }, 60_000);
  }
});

function keepAliveSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    s.once("data", () => resolve(s));
    s.once("error", reject);
    s.on("error", () => {});
  });
}
