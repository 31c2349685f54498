// WORKERS=N (runtime/workers.ts): one command, N processes on one port, on Bun and Deno.
// Real processes and Postgres: both workers take connections, a worker killed from outside
// is started again, SIGTERM stops everything with exit code 0, and set-ups that cannot
// work refuse to start.
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import postgres from "postgres";
import { childPids, freePort, ROOT, type Runtime, spawnServer } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL;
const SCHEMA = "t_workers";

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** fetch that fails instead of hanging: a hang must show where it happened. */
const get = (url: string, init: RequestInit = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(5000) });

/**
 * Appends answered by one worker, from its own /metrics (METRICS_PORT + its number). (Not
 * ds_appends_total: an append redone after the other worker moved the stream counts twice.)
 */
async function appendsSeen(metricsPort: number): Promise<number> {
  const text = await (await get(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("ds_http_requests_total{") && l.includes('operation="append"') && l.includes('status="204"'));
  return Number(line?.split(" ").pop() ?? 0);
}

afterAll(async () => {
  if (!DATABASE_URL) return;
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await sql.end();
});

describe.skipIf(!DATABASE_URL)("WORKERS=2: two processes on one port", () => {
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: both workers answer, a killed worker comes back, SIGTERM exits 0`, async () => {
      // Worker i serves /metrics on METRICS_PORT + i: neither may be the server's port.
      const port = await freePort();
      let metricsPort = await freePort();
      while (metricsPort === port || metricsPort + 1 === port) metricsPort = await freePort();
      const server = await spawnServer({
        runtime,
        port,
        databaseUrl: DATABASE_URL,
        schema: SCHEMA,
        quiet: true,
        env: { WORKERS: "2", METRICS_PORT: String(metricsPort), LOG_LEVEL: "info" },
      });
      try {
        const pids = await until("two workers", async () => {
          const p = childPids(server.proc.pid!);
          return p.length === 2 ? p : undefined;
        });
        // Each worker listens: its own metrics port answers once it is up.
        await until("both workers listening", async () => ((await appendsSeen(metricsPort)) >= 0 && (await appendsSeen(metricsPort + 1)) >= 0 ? true : undefined));
        const name = `w-${runtime}-${Date.now()}`;
        expect((await get(`${server.url}/v1/stream/${name}`, { method: "PUT" })).status).toBe(201);
        // New connections each time: the kernel spreads them over both workers.
        for (let i = 0; i < 60; i++) {
          const res = await get(`${server.url}/v1/stream/${name}`, {
            method: "POST",
            body: "x",
            headers: { "Content-Type": "application/octet-stream", Connection: "close" },
          });
          expect(res.status).toBe(204);
        }
        const seen = [await appendsSeen(metricsPort), await appendsSeen(metricsPort + 1)];
        expect(seen[0] + seen[1]).toBe(60);
        expect(Math.min(...seen)).toBeGreaterThan(0);
        expect(await (await get(`${server.url}/v1/stream/${name}?offset=-1`)).text()).toBe("x".repeat(60));

        // A worker that dies is replaced, and the port keeps answering meanwhile.
        process.kill(pids[0], "SIGKILL");
        const replaced = await until("a replacement worker", async () => {
          const p = childPids(server.proc.pid!);
          return p.length === 2 && !p.includes(pids[0]) ? p : undefined;
        });
        expect(replaced).toContain(pids[1]);
        await until("the replacement listening", async () => ((await get(`${server.url}/healthz`, { headers: { Connection: "close" } })).status === 200 ? true : undefined));
        // The supervisor's log line travels through a pipe: it may arrive after the new pid shows.
        await until("the supervisor's restart line", async () => (server.output().includes("worker exited; starting it again") ? true : undefined));
      } catch (err) {
        // What the supervisor and its workers printed explains most failures here.
        throw new Error(`${(err as Error).message}\n--- server output ---\n${server.output().slice(-4000)}`);
      } finally {
        const exited = new Promise<number | null>((r) => server.proc.once("exit", (code) => r(code)));
        server.proc.kill("SIGTERM");
        const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running 15 s after SIGTERM"), 15_000))]);
        if (typeof code === "string") await server.stop("SIGKILL");
        expect(code).toBe(0);
      }
      expect(childPids(server.proc.pid!)).toEqual([]);
    }, 60_000);
  }
});

describe("WORKERS refuses set-ups that cannot work", () => {
  const refuse = async (env: Record<string, string>) => {
    const proc = spawn(join(ROOT, "node_modules/.bin/bun"), ["src/main.ts"], {
      cwd: ROOT,
      env: { ...(process.env as Record<string, string>), HOST: "127.0.0.1", LOG_LEVEL: "silent", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    proc.stderr!.on("data", (b) => (err += b));
    const code = await new Promise<number | null>((r) => proc.once("exit", (c) => r(c)));
    return { code, err };
  };

  test("without DATABASE_URL (PGlite belongs to one process)", async () => {
    const env: Record<string, string> = { WORKERS: "2", PORT: String(await freePort()), DATABASE_URL: "" };
    const { code, err } = await refuse(env);
    expect(code).toBe(1);
    expect(err).toContain("WORKERS > 1 needs DATABASE_URL");
  });

  test("with PORT=0", async () => {
    const { code, err } = await refuse({ WORKERS: "2", PORT: "0", DATABASE_URL: "postgres://127.0.0.1:1/none" });
    expect(code).toBe(1);
    expect(err).toContain("WORKERS > 1 needs a fixed PORT");
  });
});
