// Warm-up before ready (issue 30 item 2; src/http/warm-up.ts): /healthz answers 503 while the
// instance opens and prepares its pool and runs its own traffic, 200 afterwards, and the
// warm-up leaves no stream behind. On Postgres the warm-up is held up on purpose (a lock on
// ds_producers, which its statements read) to see /healthz refuse meanwhile; on PGlite (one
// connection) only the outcome is checked.
import { afterEach, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { loadConfig } from "../../src/settings.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { openDb } from "../../src/store/driver/db.ts";
import { migrate } from "../../src/store/migrate.ts";
import { databaseUrl, dropSchema, fromMigratedDump, uniqueSchema } from "../support/backends.ts";
import { freePort } from "../support/spawn-server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const QUIET = { LOG_LEVEL: "silent", SWEEP_INTERVAL_MS: "0", RETENTION_INTERVAL_MS: "0" };

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`${url}/healthz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return undefined; // not listening yet
  }
}

async function expectWarmedAndClean(srv: RunningServer, connections: number, count: () => Promise<number>) {
  const h = await health(srv.url);
  expect(h?.status).toBe(200);
  const warmUp = h?.body.warmUp as { connections: number; requests: number };
  expect(warmUp.connections).toBe(connections);
  expect(warmUp.requests).toBeGreaterThan(100);
  // Both warm-up streams were deleted, rows and all.
  expect(await count()).toBe(0);
}

describe("warm-up before ready on pglite", () => {
  test("healthz reports the warm-up (its one connection prepared, no traffic)", async () => {
    server = await startServer(loadConfig({ ...QUIET, PORT: "0", DATA_DIR: "memory://" }), await fromMigratedDump());
    const h = await health(server.url);
    expect(h?.status).toBe(200);
    expect(h?.body.warmUp).toMatchObject({ connections: 1, requests: 0 });
  });
});

describe.skipIf(!databaseUrl)("warm-up before ready on postgres", () => {
  test("healthz is 503 until every pool connection is prepared and the traffic ran, then 200", async () => {
    const schema = uniqueSchema("warm");
    const migrated = await openDb({ databaseUrl, schema, poolSize: 1 });
    await migrate(migrated);
    await migrated.close();
    const sql = postgres(databaseUrl!, { max: 1, onnotice: () => {} });
    const lock = await sql.reserve();
    try {
      await lock.unsafe("BEGIN");
      await lock.unsafe(`LOCK TABLE "${schema}".ds_producers IN ACCESS EXCLUSIVE MODE`);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const starting = startServer(loadConfig({ ...QUIET, PORT: String(port), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: "4", WARM_UP_APPENDS: "400" }));
      let settled = false;
      starting.then(() => (settled = true), () => (settled = true));
      let h: Awaited<ReturnType<typeof health>>;
      for (let i = 0; !(h = await health(url)) && i < 200; i++) await sleep(50);
      // Listening, but the warm-up waits for the lock: not ready, and it says why.
      for (let i = 0; i < 5; i++) {
        expect(h?.status).toBe(503);
        expect(h?.body.warmUp).toBe("in progress");
        expect(settled).toBe(false);
        await sleep(100);
        h = await health(url);
      }
      await lock.unsafe("ROLLBACK");
      lock.release();
      server = await starting;
      const count = async () => {
        const [row] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".ds_streams`);
        return row.n as number;
      };
      await expectWarmedAndClean(server, 4, count);
    } finally {
      await lock.unsafe("ROLLBACK").catch(() => {});
      lock.release();
      await server?.stop();
      server = undefined;
      await sql.end();
      await dropSchema(schema);
    }
  });
});
