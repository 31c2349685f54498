// One small interface over the two backends (postgres.js and embedded PGlite), both
// driven through drizzle-orm, so the rest of store/ never cares which one it has. One file
// per driver (postgres.ts, pglite.ts) implements it.
import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import type { Listener } from "./listener.ts";
import { openPglite } from "./pglite.ts";
import { openPostgres } from "./postgres.ts";
import { type Statement, statement } from "./statement.ts";

export { type Statement, sql, statement };

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
  /**
   * Runs fn once on each connection of the pool, all of them open at once (postgres.js opens
   * connections only when a query finds none idle; PGlite has one). Warm-up at start: every
   * connection is established and has its hot statements prepared before traffic arrives.
   * Returns how many connections ran fn.
   */
  eachConnection(fn: (q: Queryable) => Promise<void>): Promise<number>;
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

export async function openDb(opts: DbOptions): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPglite(opts);
}
