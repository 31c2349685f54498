// Failover to a synchronous standby (issue 29.2), on two private clusters this test creates
// and always drops (ports 5441-5449; never the shared Postgres): a primary, and a hot standby
// made from it with pg_basebackup -R that the primary waits for on every commit
// (synchronous_standby_names). Two instances, one Bun and one Deno, are given both hosts in
// one URL with target_session_attrs=read-write. Under load (idempotent producers through
// both, long-poll and SSE readers following every stream on both), the primary is killed
// (pg_ctl -m immediate, no shutdown checkpoint, clients cut off), then the standby promoted.
// Asserted:
//   - the service is back within 5 s of the promotion (every writer's next append acknowledged);
//   - 0 acknowledged appends lost or duplicated, each writer's appends stored in order;
//   - every live reader saw exactly the stored sequence (no gap, nothing twice);
//   - no 500 and no hang; 503 only between the kill and 2 s after the promotion.
// Measured and printed: time from promotion to the first and to the last writer's first
// acknowledged append, appends acknowledged, lost, duplicated.
//
// Run twice: instances connected to both servers directly, and through a PgBouncer beside
// each (deploy/compose.replicas.yaml's layout; skipped without pgbouncer).
// Skipped with a warning only when pg_createcluster cannot run here.
//   FAILOVER_SETTLE_MS  load time before the kill and after the promotion (default 3000)
//   FAILOVER_DOWN_MS    time between the kill and the promotion (default 1000)
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { redactSetting } from "../../src/observability/redact.ts";
import { driverTarget } from "../../src/store/driver/target.ts";
import { expectCleanRun } from "../support/fault-checks.ts";
import { type Fault, type FaultRun, Load } from "../support/fault-load.ts";
import { createPgCluster, type PgCluster, pgClusterUnavailable } from "../support/pg-cluster.ts";
import { type PgBouncer, pgBouncerUnavailable, startPgBouncer } from "../support/pgbouncer.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const SKIP = pgClusterUnavailable();
if (SKIP) console.warn(`test/reliability/failover.test.ts: SKIPPED (${SKIP})`);

// 5446-5449 are PgBouncers' (this test's 5448-5449, test/http/pgbouncer.test.ts, scripts/conformance-pgbouncer.ts).
const PORTS = [5441, 5442, 5443, 5444, 5445];
const SETTLE_MS = Number(process.env.FAILOVER_SETTLE_MS ?? 3_000);
const DOWN_MS = Number(process.env.FAILOVER_DOWN_MS ?? 1_000);
/** The bound: the service is back on the standby within 5 s of its promotion. */
const BACK_BOUND_MS = 5_000;
const INSTANCE_ENV = { LONG_POLL_TIMEOUT_MS: "10000", SSE_MAX_LIFETIME_MS: "60000" };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

describe("driverTarget with several hosts", () => {
  test("read-write (or no target) asks postgres.js for a primary; a single host is left alone", () => {
    const two = "postgres://u@10.0.0.1:5432,10.0.0.2:5432/db";
    expect(driverTarget(`${two}?target_session_attrs=read-write`)).toEqual({ url: `${two}?target_session_attrs=read-write`, targetSessionAttrs: "primary" });
    expect(driverTarget(two)).toEqual({ url: two, targetSessionAttrs: "primary" });
    expect(driverTarget(`${two}?target_session_attrs=any`)).toEqual({ url: `${two}?target_session_attrs=any` });
    expect(driverTarget("postgres://u@db/x")).toEqual({ url: "postgres://u@db/x" });
  });

  test("the start-up log shows a multi-host URL's hosts, not its password", () => {
    const logged = redactSetting("DATABASE_URL", "postgres://u:s3cret@10.0.0.1:5432,10.0.0.2:5432/db?target_session_attrs=read-write");
    expect(logged).toBe("postgres://u:***@10.0.0.1:5432,10.0.0.2:5432/db?target_session_attrs=read-write");
  });
});

const clusters: PgCluster[] = [];
const bouncers: PgBouncer[] = [];
const servers: SpawnedServer[] = [];

/** A primary and a synchronous hot standby made from it with pg_basebackup -R. */
async function replicatedPair(): Promise<[PgCluster, PgCluster]> {
  const primary = await createPgCluster("dsfailover", { ports: PORTS });
  clusters.push(primary);
  const standby = await createPgCluster("dsfailover", { ports: PORTS, standbyOf: primary });
  clusters.push(standby);
  // Only now: with no standby connected, the primary's commits (CREATE DATABASE too) would wait.
  await primary.configure(["synchronous_standby_names = '*'", "synchronous_commit = on"]);
  for (const deadline = now() + 30_000; ; await sleep(100)) {
    const r = await primary.psql("SELECT sync_state FROM pg_stat_replication");
    if (r.output.trim() === "sync") return [primary, standby];
    if (now() > deadline) throw new Error(`standby never became synchronous: ${r.output}`);
  }
}

afterAll(async () => {
  const dir = process.env.FAULT_LOG_DIR;
  if (dir) servers.forEach((s, i) => writeFileSync(`${dir}/failover-server-${i}-${s.port}.log`, s.output()));
  try {
    await Promise.all(servers.map((s) => s.stop("SIGKILL").catch(() => {})));
    await Promise.all(bouncers.map((b) => b.stop()));
  } finally {
    for (const c of clusters.reverse()) c.drop();
  }
}, 30_000);

// "direct": the instances connect to both servers. "PgBouncer beside each": the layout of
// deploy/compose.replicas.yaml, the pool through a transaction-mode PgBouncer in front of
// each server (both listed, read-write), LISTEN straight to both, prepared statements off.
const LAYOUTS = ["direct", "PgBouncer beside each"] as const;

describe.skipIf(!!SKIP)("failover to a synchronous standby", () => {
  for (const layout of LAYOUTS) {
    test.skipIf(layout !== "direct" && !!pgBouncerUnavailable())(`${layout}: primary killed under load, standby promoted: back within 5 s, nothing acknowledged lost or duplicated, readers without a gap`, async () => {
      const [p, s] = await replicatedPair();
      const schema = `failover_${process.pid}`;
      const direct = `postgres://postgres@127.0.0.1:${p.port},127.0.0.1:${s.port}/ds?target_session_attrs=read-write`;
      let url = direct;
      let env: Record<string, string> = INSTANCE_ENV;
      if (layout !== "direct") {
        const [b1, b2] = await Promise.all([p, s].map((c, i) => startPgBouncer({ port: 5448 + i, upstream: c.url, schema })));
        bouncers.push(b1, b2);
        url = `postgres://postgres@127.0.0.1:${b1.port},127.0.0.1:${b2.port}/ds?target_session_attrs=read-write`;
        env = { ...INSTANCE_ENV, LISTEN_DATABASE_URL: direct, DATABASE_PREPARE: "false" };
      }
      const runtimes: Runtime[] = ["bun", "deno"];
      const instances = await Promise.all(
        runtimes.map((runtime) => spawnServer({ runtime, databaseUrl: url, schema, env, quiet: true })),
      );
      servers.push(...instances);
      // Issue 29: the service is back within 5 s of the promotion; 503s until then are the outage.
      const load = new Load(instances.map((x, i) => ({ name: `${runtimes[i]}:${x.port}`, url: x.url })), ["fo-0", "fo-1"], BACK_BOUND_MS);
      await load.createStreams();
      load.start();
      await sleep(SETTLE_MS);

      const startedAt = now();
      const killed = await p.stop("immediate");
      if (killed.code !== 0) throw new Error(`killing the primary failed: ${killed.output}`);
      await sleep(DOWN_MS);
      const promoted = await s.promote();
      if (promoted.code !== 0) throw new Error(`promotion failed: ${promoted.output}`);
      const fault: Fault = { kind: "failover", startedAt, readyAt: promoted.endedAt, commandMs: promoted.endedAt - promoted.startedAt };
      await sleep(SETTLE_MS);
      const run: FaultRun = await load.finish([fault]);

      const firstAck = Math.min(...run.writers.map((w) => (w.ackTimes.find((t) => t >= fault.readyAt) ?? Infinity) - fault.readyAt));
      const acked = run.writers.reduce((a, w) => a + w.acked, 0);
      const lost = run.writers.reduce((a, w) => a + [...Array(w.acked).keys()].filter((seq) => !run.storedSeqs(w).includes(seq)).length, 0);
      const duplicated = run.writers.reduce((a, w) => a + run.storedSeqs(w).length - new Set(run.storedSeqs(w)).size, 0);
      console.log(load.report(run));
      console.log(
        `failover (${layout}): primary killed, promoted ${Math.round(fault.readyAt - startedAt)} ms later (promote took ${Math.round(fault.commandMs)} ms); ` +
          `first acknowledged append ${Math.round(firstAck)} ms after the promotion, every writer's ${Math.round(run.recovery[0].writeResumeMs)} ms, ` +
          `every live reader's ${Math.round(run.recovery[0].readResumeMs)} ms; ${acked} appends acknowledged, ${lost} lost, ${duplicated} duplicated`,
      );

      expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
      expectCleanRun(run, instances, BACK_BOUND_MS);
      // The instances now write to the promoted standby.
      const where = await s.psql("SELECT pg_is_in_recovery()");
      expect(where.output.trim()).toBe("f");
      await Promise.all(instances.map((x) => x.stop()));
    }, 240_000);
  }
});
