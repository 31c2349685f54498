// The embedded PGlite driver: one in-process connection (PGlite serialises access to it), so
// it is always available and its listener never drops.
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import type { Db, DbOptions } from "./db.ts";
import { quoteIdent } from "./quote.ts";
import { dialect, wrap } from "./statement.ts";

/**
 * bytea parameters given as bytes are handed to PGlite as they are, which it sends in binary
 * format. Its own serializer writes hex text through an array of one string per byte: an
 * 8.7 MB JSON append cost the server +1.1 GB (issue 25).
 */
const BINARY_BYTEA = { 17: (x: unknown) => x as string };

export async function openPglite(opts: DbOptions): Promise<Db> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { mkdirSync } = await import("node:fs");
  // "memory://" keeps the database in memory (tests); anything else is a folder.
  const dataDir = opts.dataDir ?? "./data";
  if (!dataDir.startsWith("memory://")) mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir, { ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}), serializers: BINARY_BYTEA });
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
    eachConnection: async (fn) => {
      await fn(base);
      return 1;
    },
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
