// One small interface over the two backends (postgres.js and embedded PGlite), both
// driven through drizzle-orm, so the rest of store/ never cares which one it has.
import { Placeholder, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import postgres from "postgres";
import { AvailabilityGate } from "./availability.ts";
import { driverTarget, dropFailedPrimaryProbes } from "./driver-target.ts";
import { type Listener, listenPostgres } from "./listener.ts";
import { quoteIdent } from "./quote.ts";

export { quoteIdent };

export type Row = Record<string, unknown>;

export interface QueryOptions {
  /** Keep a server-side prepared statement (constant-text hot queries only). */
  prepare?: boolean;
}

export interface Queryable {
  rows<T = Row>(query: SQL, opts?: QueryOptions): Promise<T[]>;
  /** Runs a statement rendered once (statement()), with values for its placeholders; always prepared. */
  run<T = Row>(statement: Statement, values: Record<string, unknown>): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /**
   * Runs `COPY (...) TO STDOUT (FORMAT binary)` and returns the raw bytes, when the driver
   * supports it (postgres.js). Bulk bytea then travels without hex text encoding.
   */
  copyOut?(query: SQL): Promise<Uint8Array[]>;
  readonly schema: string;
  /** Runs fn in one transaction; commits when fn resolves, rolls back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a notification channel on one dedicated connection that heals itself.
   * onListen runs after every (re)connect of that connection, when notifications may have
   * been missed.
   */
  listen(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<Listener>;
  /** False while the database is known to be unreachable (requests are refused with 503). */
  readonly available: boolean;
  close(): Promise<void>;
  /** PGlite only: a dump of the whole data folder (tests start new databases from one). */
  dumpDataDir?(): Promise<Blob>;
}

/** Driver timeouts: how fast an outage is noticed and how soon a restarted Postgres is used again. */
export interface DriverOptions {
  /** Give up on a connection attempt after this long (postgres.js defaults to 30 s). */
  connectTimeoutMs: number;
  /** Longest pause between reconnect attempts (postgres.js grows it to 20 s). */
  reconnectMaxMs: number;
  /** How often the listener connection proves it is alive. */
  heartbeatMs: number;
  /** Listener events (lost, re-connected). */
  log?: (msg: string) => void;
  /** The database became unreachable (once per outage, with its cause) or answers again. */
  onAvailability?: (up: boolean, detail: { cause?: unknown; downForMs?: number }) => void;
}

export const DEFAULT_DRIVER: DriverOptions = { connectTimeoutMs: 3_000, reconnectMaxMs: 500, heartbeatMs: 1_000 };

export interface DbOptions {
  databaseUrl?: string;
  /** Where the LISTEN connections go (a session of their own: past a transaction pooler); default databaseUrl. */
  listenUrl?: string;
  /**
   * Keep hot statements prepared per connection (default true). A transaction-mode pooler
   * hands each transaction any server connection, where the statement is unknown: false
   * then, and every query with parameters is parsed afresh (unnamed statement), and chunks
   * are read without COPY (see copyOut below).
   */
  prepare?: boolean;
  /** PGlite folder (or "memory://") when databaseUrl is unset. */
  dataDir?: string;
  /** PGlite only: start from this dump of a data folder (PGlite's dumpDataDir) instead of an empty one. */
  loadDataDir?: Blob;
  schema: string;
  poolSize: number;
  driver?: Partial<DriverOptions>;
  /**
   * A hot standby for reads: nothing is created or checked at open (a standby refuses
   * writes, and may be down when the instance starts), and any host will do.
   */
  standby?: boolean;
}

/**
 * A hot statement rendered to text once: drizzle walks the SQL tree when it renders, which
 * cost an append group several microseconds per append. Parameters are drizzle placeholders
 * (sql.placeholder("name")), filled per run; other embedded values stay fixed.
 */
export interface Statement {
  readonly text: string;
  /** Per parameter: the placeholder it takes its value from, or its fixed value. */
  readonly slots: readonly ({ name: string } | { value: unknown })[];
}

export function statement(q: SQL): Statement {
  const { sql: text, params } = dialect.sqlToQuery(q);
  return { text, slots: params.map((p) => (p instanceof Placeholder ? { name: p.name } : { value: p })) };
}

function bind(st: Statement, values: Record<string, unknown>): unknown[] {
  return st.slots.map((slot) => {
    if ("value" in slot) return slot.value;
    if (!(slot.name in values)) throw new Error(`no value for placeholder ${slot.name}`);
    return values[slot.name];
  });
}

function normalize<T>(result: unknown): T[] {
  // postgres.js returns an array of rows; PGlite returns { rows }.
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

function wrap(
  run: (q: SQL, opts?: QueryOptions) => Promise<unknown>,
  exec: (script: string) => Promise<unknown>,
  runText: (text: string, params: unknown[]) => Promise<unknown>,
): Queryable {
  return {
    rows: async <T>(q: SQL, opts?: QueryOptions) => normalize<T>(await run(q, opts)),
    run: async <T>(st: Statement, values: Record<string, unknown>) => normalize<T>(await runText(st.text, bind(st, values))),
    exec: async (script) => {
      await exec(script);
    },
  };
}

const dialect = new PgDialect();


export async function openDb(opts: DbOptions): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPglite(opts);
}

async function openPostgres(databaseUrl: string, opts: DbOptions): Promise<Db> {
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
    max: opts.poolSize,
    onnotice: () => {},
    connection,
    connect_timeout: driver.connectTimeoutMs / 1000,
    // postgres.js waits 3^n/100 s (up to 20 s) after the n-th failure in a row, so a restart
    // of a few seconds cost half a minute; short, capped and jittered instead.
    backoff: (n: number) => (Math.min(driver.reconnectMaxMs, 25 * 2 ** n) * (0.5 + Math.random() / 2)) / 1000,
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

async function openPglite(opts: DbOptions): Promise<Db> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { mkdirSync } = await import("node:fs");
  // "memory://" keeps the database in memory (tests); anything else is a folder.
  const dataDir = opts.dataDir ?? "./data";
  if (!dataDir.startsWith("memory://")) mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir, opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {});
  await client.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(opts.schema)}; SET search_path TO ${quoteIdent(opts.schema)}`);
  const db = drizzlePglite(client);
  const base = wrap((q) => db.execute(q), (s) => client.exec(s), (text, params) => client.query(text, params));
  return {
    kind: "pglite",
    schema: opts.schema,
    ...base,
    // PGlite's own transaction (it serialises all access to the single embedded
    // connection); queries are rendered by drizzle's Postgres dialect.
    tx: (fn) =>
      client.transaction((t) =>
        fn(
          wrap(
            (q) => {
              const { sql: text, params } = dialect.sqlToQuery(q);
              return t.query(text, params);
            },
            (s) => t.exec(s),
            (text, params) => t.query(text, params),
          ),
        ),
      ),
    // Embedded: the database cannot become unreachable.
    available: true,
    async listen(channel, onNotify, onListen) {
      // PGlite lives in this process: its listener cannot drop, so onListen runs once.
      const unlisten = await client.listen(channel, onNotify);
      onListen();
      return { healthy: true, reconnects: 0, close: unlisten };
    },
    close: () => client.close(),
    dumpDataDir: async () => (await client.dumpDataDir("none")) as Blob,
  };
}

export { sql };
export { driverTarget };
