// Mixed concurrent load against the real server process, on Bun and Deno, PGlite and
// (with DATABASE_URL) Postgres: dozens of clients mixing catch-up reads, HEADs, appends,
// long-polls, SSE readers, deletes and re-creates over a few streams at once. Any 5xx is a
// bug here (no outage is caused), and so is any line the server logs at level error or
// fatal, or prints outside its JSON log mentioning an error (problemLines).
//
//   MIXED_LOAD_SECONDS   how long each configuration runs (default 6; the figure is 60)
//   MIXED_LOAD_CLIENTS   concurrent clients (default 32)
import { afterAll, describe, expect, test } from "bun:test";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
// Deterministic per-client random numbers, so a failing run can be replayed.
import { rng } from "../support/fuzz-cases.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
const SECONDS = Number(process.env.MIXED_LOAD_SECONDS ?? 6);
const CLIENTS = Number(process.env.MIXED_LOAD_CLIENTS ?? 32);
const STREAMS = 20;
const BODY = new Uint8Array(2048).fill(0x61);

type Op = "read" | "head" | "append" | "append-json" | "long-poll" | "sse" | "delete" | "create";
// Weights: mostly reads and appends, with live reads and the occasional delete + re-create.
const MIX: [Op, number][] = [
  ["read", 30], ["head", 15], ["append", 30], ["append-json", 5], ["long-poll", 8], ["sse", 6], ["delete", 2], ["create", 4],
];


function pick(r: () => number): Op {
  const total = MIX.reduce((a, [, w]) => a + w, 0);
  let x = r() * total;
  for (const [op, w] of MIX) if ((x -= w) < 0) return op;
  return "read";
}

export interface LoadResult {
  requests: number;
  statuses: Record<string, number>;
  fiveHundreds: string[];
}

async function once(base: string, op: Op, r: () => number): Promise<[number, string]> {
  const i = Math.floor(r() * STREAMS);
  const json = i % 4 === 0;
  const url = `${base}/v1/stream/mixed-${i}`;
  const type = json ? "application/json" : "application/octet-stream";
  const signal = AbortSignal.timeout(10_000);
  switch (op) {
    case "read":
      return [(await drain(await fetch(`${url}?offset=-1`, { signal }))), op];
    case "head":
      return [(await drain(await fetch(url, { method: "HEAD", signal }))), op];
    case "append":
    case "append-json": {
      const body = json ? JSON.stringify([{ n: r() }, { n: 2 }]) : BODY;
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": type }, body, signal });
      return [await drain(res), op];
    }
    case "long-poll":
      return [await drain(await fetch(`${url}?offset=now&live=long-poll`, { signal })), op];
    case "sse": {
      const ctl = new AbortController();
      // Its own connection: one hung up mid-response must not go back to the client's pool.
      const res = await fetch(`${url}?offset=-1&live=sse`, { signal: ctl.signal, keepalive: false });
      const status = res.status;
      // Read for a moment, then hang up mid-stream as browsers do.
      const reader = res.body?.getReader();
      const until = Date.now() + 200 + r() * 600;
      try {
        while (reader && Date.now() < until) {
          const t = setTimeout(() => ctl.abort(), until - Date.now());
          const { done } = await reader.read().finally(() => clearTimeout(t));
          if (done) break;
        }
      } catch {
        // our own abort
      }
      ctl.abort();
      return [status, op];
    }
    case "delete":
      return [await drain(await fetch(url, { method: "DELETE", signal })), op];
    case "create":
      return [await drain(await fetch(url, { method: "PUT", headers: { "Content-Type": type }, signal })), op];
  }
}

async function drain(res: Response): Promise<number> {
  await res.arrayBuffer().catch(() => {});
  return res.status;
}

export async function runMixedLoad(base: string, seconds: number, clients: number, seed = 1): Promise<LoadResult> {
  for (let i = 0; i < STREAMS; i++) {
    await fetch(`${base}/v1/stream/mixed-${i}`, {
      method: "PUT",
      headers: { "Content-Type": i % 4 === 0 ? "application/json" : "application/octet-stream" },
    });
  }
  const out: LoadResult = { requests: 0, statuses: {}, fiveHundreds: [] };
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const r = rng(seed * 1000 + c + 1);
      while (Date.now() < end) {
        const op = pick(r);
        let status: number;
        try {
          [status] = await once(base, op, r);
        } catch (err) {
          // A client-side timeout or reset is a failure too: the server must answer.
          out.fiveHundreds.push(`${op}: ${(err as Error).message}`);
          continue;
        }
        out.requests++;
        out.statuses[status] = (out.statuses[status] ?? 0) + 1;
        if (status >= 500) out.fiveHundreds.push(`${op}: ${status}`);
      }
    }),
  );
  return out;
}

/**
 * The server's output lines that report a failure: JSON log lines at level error or fatal,
 * and anything else it printed (runtime warnings, console output) that mentions an error.
 */
function problemLines(output: string): string[] {
  return output.split("\n").filter((line) => {
    const text = line.trim();
    if (!text) return false;
    try {
      const entry = JSON.parse(text) as { level?: unknown };
      return entry.level === "error" || entry.level === "fatal";
    } catch {
      return /error|exception|uncaught|unhandled|panic/i.test(text);
    }
  });
}

test("problemLines finds error lines, JSON or not, and nothing in a clean log", () => {
  const clean = ['{"level":"info","msg":"listening"}', '{"level":"warn","msg":"slow"}', "Listening on 127.0.0.1:1", ""].join("\n");
  expect(problemLines(clean)).toEqual([]);
  const bad = ['{"level":"error","msg":"request handler threw"}', '{"level":"fatal","msg":"x"}', "TypeError: boom", "Unhandled rejection"];
  expect(problemLines([clean, ...bad].join("\n"))).toEqual(bad);
});

const configs: { runtime: Runtime; backend: "pglite" | "postgres" }[] = [
  { runtime: "bun", backend: "pglite" },
  { runtime: "deno", backend: "pglite" },
  ...(DATABASE_URL ? ([{ runtime: "bun", backend: "postgres" }, { runtime: "deno", backend: "postgres" }] as const) : []),
];
if (!DATABASE_URL) console.warn("test/reliability/mixed-load.test.ts: Postgres runs SKIPPED (set DATABASE_URL)");

const running: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

describe("mixed concurrent load", () => {
  for (const { runtime, backend } of configs) {
    test(`${runtime} + ${backend}: no 5xx and no unexpected error in ${SECONDS} s of ${CLIENTS} clients`, async () => {
      const server = await spawnServer({
        runtime,
        databaseUrl: backend === "postgres" ? DATABASE_URL : undefined,
        schema: backend === "postgres" ? `mixed_${runtime}_${process.pid}_${Date.now().toString(36)}` : undefined,
        env: { LONG_POLL_TIMEOUT_MS: "500", SSE_MAX_LIFETIME_MS: "2000", READ_CHUNK_BYTES: "65536" },
        quiet: true,
      });
      running.push(server);
      const result = await runMixedLoad(server.url, SECONDS, CLIENTS);
      const log = server.output();
      console.log(`${runtime} + ${backend}: ${result.requests} requests, statuses ${JSON.stringify(result.statuses)}`);
      if (result.fiveHundreds.length) console.log(result.fiveHundreds.slice(0, 20), log.split("\n").filter((l) => /error|fail/i.test(l)).slice(0, 20));
      expect(result.fiveHundreds.slice(0, 10)).toEqual([]);
      expect(problemLines(log)).toEqual([]);
      expect(result.requests).toBeGreaterThan(SECONDS * 50);
      expect(result.statuses["200"] ?? 0).toBeGreaterThan(0);
      expect(result.statuses["204"] ?? 0).toBeGreaterThan(0);
      await server.stop();
    }, (SECONDS + 60) * 1000);
  }
});
