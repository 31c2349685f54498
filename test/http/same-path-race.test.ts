// Issue 26.4: PUT, POST, DELETE, HEAD and GET going to one path at once, over raw sockets,
// on Bun and Deno with Postgres (PGlite runs one statement at a time, so nothing races).
// Every request must be answered, below 500: a name with a lone "%" is a 400 for every
// method, and a legitimately encoded one ("%25") is created, appended to and deleted
// concurrently without a 500 (before: 0.4% of such requests were a 500 "duplicate key",
// a create that lost the insert race twice).
import { afterAll, describe, expect, test } from "bun:test";
import { request as rawBytes, rng } from "../support/fuzz-cases.ts";
import { exchange } from "../support/raw-http.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
const REQUESTS = Number(process.env.RACE_REQUESTS ?? 2400);
if (!DATABASE_URL) console.warn("test/http/same-path-race.test.ts: SKIPPED (set DATABASE_URL)");
const running: SpawnedServer[] = [];
afterAll(() => Promise.all(running.map((s) => s.stop())), 30_000);

const METHODS = ["PUT", "POST", "DELETE", "HEAD", "GET", "GET"];
const PATHS = ["/v1/stream/foo%", "/v1/stream/race/%", "/v1/stream/race-%25", "/v1/stream/race/a%25/b"];

for (const runtime of (DATABASE_URL ? ["bun", "deno"] : []) as Runtime[]) {
  describe(`one path, every method at once, on ${runtime} + Postgres`, () => {
    test(`${REQUESTS} requests over 12 connections: all answered, none 5xx, lone % always 400`, async () => {
      const server = await spawnServer({ runtime, quiet: true, databaseUrl: DATABASE_URL, schema: `race_${runtime}_${process.pid}_${Date.now().toString(36)}` });
      running.push(server);
      const problems: string[] = [];
      const statuses: Record<string, number> = {};
      await Promise.all(
        Array.from({ length: 12 }, async (_, w) => {
          const r = rng(1000 + w);
          for (let i = w; i < REQUESTS; i += 12) {
            const method = METHODS[Math.floor(r() * METHODS.length)];
            const path = PATHS[Math.floor(r() * PATHS.length)];
            const target = method === "GET" && r() < 0.5 ? `${path}?offset=-1` : path;
            const body = method === "POST" ? new TextEncoder().encode("x") : undefined;
            const ex = await exchange(server.port, [rawBytes(method, target, [["Content-Type", "application/octet-stream"]], body)], { methods: [method], end: "wait", timeoutMs: 8_000 });
            const status = ex.responses[0]?.status;
            statuses[`${method} ${status ?? "none"}`] = (statuses[`${method} ${status ?? "none"}`] ?? 0) + 1;
            if (status === undefined) problems.push(`${method} ${target}: no answer (${ex.timedOut ? "timed out" : "closed"})`);
            else if (status >= 500) problems.push(`${method} ${target}: ${status} ${ex.responses[0].body.toString().slice(0, 120)}`);
            else if (/%(?![0-9A-F]{2})/i.test(path) && status !== 400) problems.push(`${method} ${target}: ${status}, want 400`);
          }
        }),
      );
      console.log(`${runtime}: ${JSON.stringify(statuses)}`);
      expect(problems.slice(0, 10)).toEqual([]);
      expect(server.output()).not.toContain("unexpected error");
    }, 240_000);
  });
}
