// The benchmark's own database: created on first use, one schema per scenario so runs
// never read each other's rows.
import postgres from "postgres";

export const PG_HOST = process.env.BENCH_PG_HOST ?? "127.0.0.1";
export const PG_PORT = Number(process.env.BENCH_PG_PORT ?? 5432);
export const PG_USER = process.env.BENCH_PG_USER ?? "postgres";
export const BENCH_DB = process.env.BENCH_DB ?? "bench";

export const databaseUrl = (db = BENCH_DB) => `postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${db}`;

async function withClient<T>(db: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(databaseUrl(db), { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function ensureDatabase(): Promise<void> {
  await withClient("postgres", async (sql) => {
    const rows = await sql`SELECT 1 FROM pg_database WHERE datname = ${BENCH_DB}`;
    if (rows.length === 0) await sql.unsafe(`CREATE DATABASE "${BENCH_DB}"`);
  });
}

/** Drops and recreates nothing: the server's migrations create the schema's tables. */
export async function dropSchema(schema: string): Promise<void> {
  await withClient(BENCH_DB, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

export async function exec(script: string): Promise<void> {
  await withClient(BENCH_DB, (sql) => sql.unsafe(script));
}

export async function query<T = Record<string, unknown>>(text: string): Promise<T[]> {
  return withClient(BENCH_DB, async (sql) => (await sql.unsafe(text)) as unknown as T[]);
}

export async function serverVersion(): Promise<string> {
  return withClient("postgres", async (sql) => {
    const [row] = await sql`SELECT current_setting('server_version') AS v,
      current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs, current_setting('shared_buffers') AS sb`;
    return `PostgreSQL ${row.v} (synchronous_commit=${row.sc}, fsync=${row.fs}, shared_buffers=${row.sb})`;
  });
}

/** Transactions committed in the benchmark database so far (pg_stat_database). */
export async function committedTransactions(): Promise<number> {
  const [row] = await query<{ n: string }>(`SELECT xact_commit AS n FROM pg_stat_database WHERE datname = '${BENCH_DB}'`);
  return Number(row?.n ?? NaN);
}
