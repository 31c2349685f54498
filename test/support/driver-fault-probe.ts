// Run as its own process (Bun or Deno) by test/store/driver-faults.test.ts: a backend of
// our pool is terminated while (1) a transaction and (2) a COPY read on a reserved
// connection are in flight. The process must survive (an exception thrown from a
// postgres.js timer ends it), both calls must fail as "database unavailable", and the pool
// must serve queries, transactions and COPY reads again within a few seconds.
// Prints one JSON line of results; exits 0 unless something threw.
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { isConnectionError } from "../../src/store/driver/availability.ts";
import { openDb } from "../../src/store/driver/db.ts";

const url = process.env.PROBE_DATABASE_URL!;
const schema = process.env.PROBE_SCHEMA!;
const db = await openDb({ databaseUrl: url, schema, poolSize: 3 });
const killer = postgres(url, { max: 1, onnotice: () => {} });
const results: Record<string, unknown> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Terminates the backend running the statement tagged `token` (ours only). */
async function terminate(token: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = await killer.unsafe(
      `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE query LIKE '%${token}%' AND pid <> pg_backend_pid()`,
    );
    if (rows.length > 0) return;
    await sleep(20);
  }
  throw new Error(`no backend found running ${token}`);
}

/** Seconds until `fn` succeeds again (retrying through the availability gate), or -1. */
async function recovers(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 10_000) {
    try {
      await Promise.race([fn(), sleep(3_000).then(() => Promise.reject(new Error("hung")))]);
      return Math.round(performance.now() - t0);
    } catch {
      await sleep(50);
    }
  }
  return -1;
}

const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e) => (isConnectionError(e) ? "unavailable" : `other: ${e?.code ?? e}`));

// 1. a transaction whose backend dies mid-statement (postgres.js then sends ROLLBACK itself)
const tok1 = `tx_${Date.now().toString(36)}`;
const tx = outcome(db.tx((q) => q.rows(sql.raw(`SELECT pg_sleep(3) AS ${tok1}`))));
await terminate(tok1);
results.tx = await tx;
results.txRecoveredMs = await recovers(() => db.tx((q) => q.rows(sql`SELECT 1`)));

// 2. a COPY read on a reserved connection whose backend dies mid-read
const tok2 = `copy_${Date.now().toString(36)}`;
const copy = outcome(db.copyOut!(sql.raw(`COPY (SELECT pg_sleep(3) AS ${tok2}) TO STDOUT (FORMAT binary)`)));
await terminate(tok2);
results.copy = await copy;
results.copyRecoveredMs = await recovers(() => db.copyOut!(sql`COPY (SELECT 1) TO STDOUT (FORMAT binary)`));
// Every pool connection must work again, not just one: more parallel queries than the pool holds.
results.parallelRecoveredMs = await recovers(() => Promise.all(Array.from({ length: 8 }, () => db.rows(sql`SELECT pg_sleep(0.05)`))));
results.copiesRecoveredMs = await recovers(() => Promise.all(Array.from({ length: 4 }, () => db.copyOut!(sql`COPY (SELECT 2) TO STDOUT (FORMAT binary)`))));

await sleep(200); // let any late timer of the dead connections fire while we are still here
console.log(JSON.stringify(results));
await killer.end({ timeout: 1 });
await db.close();
