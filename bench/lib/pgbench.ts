// What Postgres itself sustains when every append is its own single-row INSERT
// transaction: the ceiling of a design without group commit. Same database, same
// 100-byte payload, same 64 clients as the append scenario.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_DB, exec, PG_HOST, PG_PORT, PG_USER } from "./pg.ts";
import { run } from "./proc.ts";

export const PGBENCH_BIN = process.env.PGBENCH_BIN ?? "pgbench";
const SCHEMA = "bench_pgbench";

export interface PgbenchResult {
  tps: number;
  transactions: number;
  latencyMsMean: number;
  failed: number;
}

export async function runPgbench(o: { clients: number; seconds: number; streams: number; bodyBytes: number }): Promise<PgbenchResult> {
  await exec(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE; CREATE SCHEMA ${SCHEMA};
    CREATE TABLE ${SCHEMA}.appends (id bigserial PRIMARY KEY, stream_id int NOT NULL, data bytea NOT NULL)`);
  const dir = mkdtempSync(join(tmpdir(), "ds-pgbench-"));
  try {
    const script = join(dir, "append.sql");
    const payload = "78".repeat(o.bodyBytes); // 'x' in hex
    writeFileSync(script, `\\set sid random(1, ${o.streams})\nINSERT INTO ${SCHEMA}.appends (stream_id, data) VALUES (:sid, '\\x${payload}'::bytea);\n`);
    const args = ["-h", PG_HOST, "-p", String(PG_PORT), "-U", PG_USER, "-n", "-M", "prepared",
      "-c", String(o.clients), "-j", "2", "-T", String(o.seconds), "-f", script, BENCH_DB];
    const res = await run(PGBENCH_BIN, args, { timeoutMs: (o.seconds + 60) * 1000 });
    const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(res.stdout);
    if (res.code !== 0 || !tps) throw new Error(`pgbench failed (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
    return {
      tps: Number(tps[1]),
      transactions: Number(/number of transactions actually processed: (\d+)/.exec(res.stdout)?.[1] ?? 0),
      latencyMsMean: Number(/latency average = ([\d.]+) ms/.exec(res.stdout)?.[1] ?? NaN),
      failed: Number(/number of failed transactions: (\d+)/.exec(res.stdout)?.[1] ?? 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await exec(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  }
}
