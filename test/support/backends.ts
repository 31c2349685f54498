// The same store test file runs against embedded PGlite and, when DATABASE_URL is set,
// real Postgres; each run gets its own schema (or in-memory database) and drops it after.
import postgres from "postgres";
import { type Db, openDb } from "../../src/store/driver/db.ts";
import { migrate } from "../../src/store/migrate.ts";

export interface Backend {
  name: "pglite" | "postgres";
  open(): Promise<Db>;
}

const databaseUrl = process.env.DATABASE_URL || undefined;
let counter = 0;

export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

let template: Promise<Blob> | undefined;

/** startServer's options for a server on DATA_DIR=memory:// that starts from a migrated dump. */
export async function fromMigratedDump(): Promise<{ pgliteDump: Blob }> {
  await (await openMigratedPglite()).close();
  return { pgliteDump: await template! };
}

/**
 * An in-memory PGlite database, migrated. Creating and migrating one costs seconds of CPU
 * (about 6x loading a dump of one on a loaded 2-core machine), so this process migrates
 * one once and every later database starts from its dump.
 */
export async function openMigratedPglite(): Promise<Db> {
  template ??= (async () => {
    const first = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1 });
    try {
      await migrate(first);
      return await first.dumpDataDir!();
    } finally {
      await first.close();
    }
  })();
  const db = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1, loadDataDir: await template });
  await migrate(db); // nothing to apply; proves the dump is current
  return db;
}

export const backends: Backend[] = [
  { name: "pglite", open: openMigratedPglite },
  ...(databaseUrl
    ? [
        {
          name: "postgres" as const,
          open: async () => {
            const schema = uniqueSchema("t");
            const db = await openDb({ databaseUrl, schema, poolSize: 6 });
            await migrate(db);
            const close = db.close.bind(db);
            db.close = async () => {
              await close();
              await dropSchema(schema);
            };
            return db;
          },
        },
      ]
    : []),
];

export async function dropSchema(schema: string): Promise<void> {
  if (!databaseUrl) return;
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end();
  }
}

export { databaseUrl };
