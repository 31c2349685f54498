// A database outage is logged once, with its cause, and once more when it ends; requests
// meanwhile get 503 without a log line each, and /metrics shows the outage (ds_db_up 0,
// ds_db_unavailable_errors_total). Runs the real server against a private Postgres
// cluster that the test creates, stops, starts and drops (never the shared one); skipped
// where pg_createcluster is missing or we are not root.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { parseMetrics, sample } from "../support/metrics.ts";
import { freePort, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const PG_VERSION = "15";
const CLUSTER = `ds_obs_${process.pid}`;
const PORT = Number(process.env.OUTAGE_PG_PORT ?? 5476);
const canRun = existsSync("/usr/bin/pg_createcluster") && process.getuid?.() === 0;
if (!canRun) console.warn("test/observability/outage.test.ts: SKIPPED — needs pg_createcluster and root for a private cluster");

const pg = (...args: string[]) => execFileSync(args[0], args.slice(1), { stdio: "pipe", timeout: 60_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(!canRun)("database outage on a private cluster", () => {
  let server: SpawnedServer;
  let metricsUrl: string;
  const lines = () =>
    server.stdout().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  const scrape = async () => parseMetrics(await (await fetch(metricsUrl)).text());
  const append = (body: string) =>
    fetch(`${server.url}/v1/stream/outage`, { method: "POST", headers: { "Content-Type": "text/plain" }, body });

  beforeAll(async () => {
    pg("pg_createcluster", PG_VERSION, CLUSTER, "--port", String(PORT), "--", "--auth=trust");
    pg("pg_ctlcluster", PG_VERSION, CLUSTER, "start");
    const metricsPort = await freePort();
    server = await spawnServer({
      databaseUrl: `postgres://postgres@127.0.0.1:${PORT}/postgres`,
      quiet: true,
      env: { LOG_FORMAT: "json", METRICS_PORT: String(metricsPort), DATABASE_POOL_SIZE: "2" },
    });
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  }, 120_000);

  afterAll(async () => {
    await server?.stop("SIGKILL");
    try {
      pg("pg_dropcluster", "--stop", PG_VERSION, CLUSTER);
    } catch (err) {
      console.warn(`could not drop cluster ${CLUSTER}: ${err}`);
    }
  }, 60_000);

  test("one error line with the cause, 503s meanwhile, one line when it is back", async () => {
    try {
      await outage();
    } catch (err) {
      // Say whether the server itself went away, and what it printed.
      const { exitCode, signalCode } = server.proc;
      throw new Error(`${err}\nserver exit=${exitCode} signal=${signalCode}; its output:\n${server.output()}`);
    }
  }, 180_000);

  async function outage() {
    expect((await fetch(`${server.url}/v1/stream/outage`, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
    expect((await append("before")).status).toBe(204);
    expect(sample(await scrape(), "ds_db_up")).toBe(1);

    pg("pg_ctlcluster", PG_VERSION, CLUSTER, "stop", "-m", "fast");
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await append(`during ${i}`)).status);
    expect(statuses).toEqual([503, 503, 503, 503, 503]);
    const during = await scrape();
    expect(sample(during, "ds_db_up")).toBe(0);
    expect(sample(during, "ds_db_unavailable_errors_total")).toBeGreaterThanOrEqual(5);
    const down = lines().filter((r) => r.msg === "database unavailable");
    expect(down.length).toBe(1);
    expect(down[0].level).toBe("error");
    const err = down[0].err as { message?: string; code?: string };
    expect(`${err.code} ${err.message}`).toMatch(/ECONNREFUSED|CONNECTION|57P|08/);
    // No log line per failed request (the access log is off; 503s are the outage's).
    expect(lines().filter((r) => r.level === "error").length).toBe(1);

    pg("pg_ctlcluster", PG_VERSION, CLUSTER, "start");
    // Appends resume within about a second of Postgres accepting connections again
    // (capped reconnect backoff and the availability gate's probe; test/reliability measures it).
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (status !== 204 && Date.now() < deadline) {
      status = (await append("after")).status;
      if (status !== 204) await sleep(250);
    }
    expect(status).toBe(204);
    const back = lines().filter((r) => r.msg === "database available again");
    expect(back.length).toBe(1);
    expect(back[0].outageMs).toBeGreaterThan(0);
    const after = await scrape();
    expect(sample(after, "ds_db_up")).toBe(1);
    // The LISTEN connection came back too (it may trail the pool by a moment).
    await until("the listener reconnected", async () => sample(await scrape(), "ds_listener_reconnects_total") >= 1);
    expect(lines().filter((r) => r.msg === "database unavailable").length).toBe(1);
  }
});
