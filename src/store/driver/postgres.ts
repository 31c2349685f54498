// The postgres.js driver: a pool behind an availability gate, hot statements prepared, bulk
// reads by binary COPY, and a self-healing LISTEN connection per channel.
import { backoffMs } from "../../lib/backoff.ts";
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { AvailabilityGate } from "./availability.ts";
import type { Db, DbOptions, DriverOptions } from "./db.ts";
import { listenPostgres } from "./listener.ts";
import { quoteIdent } from "./quote.ts";
import { dialect, wrap } from "./statement.ts";
import { driverTarget, dropFailedPrimaryProbes } from "./target.ts";

export const DEFAULT_DRIVER: DriverOptions = { connectTimeoutMs: 3_000, reconnectMaxMs: 500, heartbeatMs: 1_000 };

export async function openPostgres(databaseUrl: string, opts: DbOptions): Promise<Db> {
  const driver = { ...DEFAULT_DRIVER, ...opts.driver };
  const connection = { search_path: opts.schema, application_name: "pg-durable-streams" };
  const target = driverTarget(databaseUrl);
  const { url, path } = target;
  // A standby is read from whatever it is; read-write would refuse it.
  const targetSessionAttrs = opts.standby ? undefined : target.targetSessionAttrs;
  const listenAt = opts.listenUrl ? driverTarget(opts.listenUrl) : { url, path, targetSessionAttrs };
  const pooled = opts.prepare === false;
  if (targetSessionAttrs || listenAt.targetSessionAttrs) dropFailedPrimaryProbes();
  const client = postgres(url, {
    path,
    target_session_attrs: targetSessionAttrs,
    prepare: !pooled,
    // Hot statements are prepared once per connection, and Postgres keeps planning some of them
    // afresh on every run when it judges their custom plans cheaper: the subscription wake
    // statement spent 0.8 ms of its 2.4 ms planning. Their generic plans use the same indexes
    // (append → webhook p50 3.1-3.4 → 2.5-2.8 ms). Unprepared (behind a pooler) it changes
    // nothing, and PgBouncer refuses startup parameters it does not know, so it is not sent there.
    connection: pooled ? connection : { ...connection, plan_cache_mode: "force_generic_plan" },
    // A transaction-mode PgBouncer before 1.21 hands the server connection back at the first
    // idle ReadyForQuery, even with a query pipelined behind it on the same connection; that
    // query's answers then arrive "when not linked", are dropped, and it waits forever. So
    // behind a pooler one query at a time per connection (postgres.js would allow a second
    // in flight with max_pipeline 1).
    ...(pooled ? { max_pipeline: 0 } : {}),
    max: opts.poolSize,
    onnotice: () => {},
    connect_timeout: driver.connectTimeoutMs / 1000,
    // postgres.js waits 3^n/100 s (up to 20 s) after the n-th failure in a row, so a restart
    // of a few seconds cost half a minute; short, capped and jittered instead.
    backoff: (n: number) => backoffMs({ firstMs: 25, maxMs: driver.reconnectMaxMs, jitter: [0.5, 1] }, n) / 1000,
  });
  const gate = new AvailabilityGate({
    probe: () => client.unsafe("SELECT 1"),
    probeIntervalMs: 100,
    probeTimeoutMs: driver.connectTimeoutMs,
    onChange: (up, detail) => driver.onAvailability?.(up, detail),
  });
  // A standby is neither written to nor asked anything at open (it may be down right now).
  if (!opts.standby) await prepareSchema(client, opts.schema);
  const db = drizzlePostgres(client);
  // Hot statements are rendered by drizzle's dialect and run as prepared statements
  // (drizzle's execute() never prepares); everything else goes through drizzle.
  type Conn = postgres.Sql | postgres.TransactionSql;
  const send = (c: Conn, text: string, params: unknown[], prepare: boolean) =>
    c.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare });
  const run = (c: Conn, q: SQL, prepare: boolean) => {
    const { sql: text, params } = dialect.sqlToQuery(q);
    return send(c, text, params, prepare);
  };
  const base = wrap(
    (q, o) => gate.run(() => (o?.prepare ? run(client, q, true) : db.execute(q))),
    (s) => gate.run(() => client.unsafe(s)),
    (text, params) => gate.run(() => send(client, text, params, true)),
  );
  return {
    kind: "postgres",
    schema: opts.schema,
    ...base,
    get available() {
      return gate.up;
    },
    tx: (fn) =>
      gate.run(
        () =>
          client.begin((t) =>
            fn(wrap((q, o) => run(t, q, Boolean(o?.prepare)), (s) => t.unsafe(s), (text, params) => send(t, text, params, true)))
          ) as Promise<never>,
      ),
    eachConnection: (fn) =>
      gate.run(async () => {
        // Reserved together, each reservation that finds no idle connection opens one.
        const settled = await Promise.allSettled(Array.from({ length: opts.poolSize }, () => client.reserve()));
        const conns = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        try {
          const failed = settled.find((r) => r.status === "rejected");
          if (failed) throw failed.reason;
          await Promise.all(conns.map((c) => fn(wrap((q, o) => run(c, q, Boolean(o?.prepare)), (s) => c.unsafe(s), (text, params) => send(c, text, params, true)))));
          return conns.length;
        } finally {
          for (const c of conns) c.release();
        }
      }),
    // COPY needs a statement pipelined behind it (copyOut's fence), which PgBouncer 1.18
    // cannot route: it hands the server connection back at the COPY's ReadyForQuery and
    // drops the answer to the next one (measured: the read hung). Through a pooler, chunks
    // are read as rows.
    copyOut: pooled ? undefined : (q) => gate.run(() => copyOut(client, q)),
    listen: (channel, onNotify, onListen) =>
      listenPostgres({
        ...listenAt,
        // Named after the channel (schema-prefixed), so operators and tests can tell them apart.
        connection: { ...connection, application_name: `listen ${channel}`.slice(0, 63) },
        channel,
        onNotify,
        onListen,
        heartbeatMs: driver.heartbeatMs,
        connectTimeoutS: driver.connectTimeoutMs / 1000,
        retryMaxMs: driver.reconnectMaxMs,
        log: driver.log,
      }),
    close: async () => {
      gate.close();
      await client.end({ timeout: 5 });
    },
  };
}

/** Creates the schema if needed and checks that the pool's connections use it. */
async function prepareSchema(client: postgres.Sql, schema: string): Promise<void> {
  // Every pool connection must see our schema; create it before the first query uses it.
  await client.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`).catch((err) => {
    // Instances starting together race on CREATE SCHEMA (unique violation on the
    // catalog); the schema existing is all we need.
    if (err?.code !== "23505" && err?.code !== "42P06") throw err;
  });
  // The schema travels as a connection setting, which a pooler may drop (PgBouncer 1.18 only
  // ignores it: deploy/pgbouncer.ini); tables created elsewhere would split the data.
  const [seen] = await client.unsafe<{ schema: string | null }[]>("SELECT current_schema() AS schema");
  if (seen?.schema !== schema) {
    await client.end({ timeout: 1 });
    throw new Error(
      `connections use schema ${JSON.stringify(seen?.schema)}, not DATABASE_SCHEMA ${JSON.stringify(schema)}: ` +
        "a pooler that drops the search_path setting must set it itself (PgBouncer: connect_query on the database entry)",
    );
  }
}

/**
 * Runs `COPY (...) TO STDOUT (FORMAT binary)` on a reserved connection. postgres.js would
 * otherwise pipeline other queries onto the connection while the COPY streams, and they
 * fail with COPY_IN_PROGRESS; reserved, nobody else can use it until the read has ended.
 */
async function copyOut(client: postgres.Sql, q: SQL): Promise<Uint8Array[]> {
  const { sql: text, params } = dialect.sqlToQuery(q);
  if (params.length > 0) throw new Error("COPY takes no parameters; inline validated integers");
  const conn = await client.reserve();
  try {
    const query = conn.unsafe(text);
    const copy = query.readable();
    query.execute();
    // An empty statement sent right behind the COPY settles only after the COPY's own
    // ReadyForQuery: the connection goes back to the pool idle, never with the COPY's end
    // still in flight (the stream's "end" can come before ReadyForQuery arrives).
    const fence = conn.unsafe("").execute().then(() => {}, () => {});
    const readable = await copy;
    // postgres.js pauses the connection's socket whenever the COPY stream's buffer is
    // full and resumes it only from the stream's read(); rows pushed before we attach,
    // or a last row that filled the buffer, can leave the socket paused and the
    // connection stuck for its next query. So drain in flowing mode and poke read()
    // (which only resumes the socket) after every chunk and at the end.
    const resume = () => (readable as unknown as { _read?: (n: number) => void })._read?.(0);
    return await new Promise<Uint8Array[]>((resolve, reject) => {
      const parts: Uint8Array[] = [];
      readable.on("data", (part: Uint8Array) => {
        parts.push(part);
        resume();
      });
      readable.once("end", () => {
        resume();
        resolve(parts);
      });
      readable.once("error", reject);
      resume();
    }).finally(() => fence);
  } finally {
    conn.release();
  }
}
