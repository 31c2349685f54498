// The same store test file runs against embedded PGlite and, when DATABASE_URL is set,
// real Postgres; each run gets its own schema (or in-memory database) and drops it after.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { type Db, openDb } from "../../src/store/driver/db.ts";
import { migrate } from "../../src/store/migrate.ts";
import { templateKey } from "./spawn-server.ts";

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
  return { pgliteDump: await migratedDump() };
}

/**
 * A dump of a migrated in-memory PGlite database. Creating and migrating one costs seconds of
 * CPU (12 s against 1 s for loading a dump, measured on the loaded 2-core machine), so it is
 * built once per checkout and kept as a file beside the folder template (spawn-server.ts),
 * keyed by the migrations and the PGlite version; written under another name and renamed into
 * place, so concurrent test processes cannot read half a file.
 */
function migratedDump(): Promise<Blob> {
  template ??= (async () => {
    const file = join(tmpdir(), `ds-pglite-dump-${templateKey()}.tar`);
    if (existsSync(file)) return new Blob([readFileSync(file)]);
    const first = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1 });
    try {
      await migrate(first);
      const dump = await first.dumpDataDir!();
      const partial = `${file}.${process.pid}.partial`;
      writeFileSync(partial, new Uint8Array(await dump.arrayBuffer()));
      renameSync(partial, file);
      return dump;
    } finally {
      await first.close();
    }
  })();
  return template;
}

/** An in-memory PGlite database, migrated (loaded from the dump above). */
export async function openMigratedPglite(): Promise<Db> {
  const db = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1, loadDataDir: await migratedDump() });
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
