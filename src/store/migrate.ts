// Applies migrations/NNNN_name.sql in order, inside one transaction that holds an
// advisory lock, so instances starting together apply each migration exactly once.
// Refuses to run against a database migrated by newer code.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Db, sql } from "./driver/db.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f, sql: readFileSync(`${dir}/${f}`, "utf8") }));
}

export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  return db.tx(async (q) => {
    // Lock key is per schema, so separate schemas migrate independently.
    await q.rows(sql`SELECT pg_advisory_xact_lock(hashtext(${`ds_migrate:${db.schema}`}))`);
    await q.rows(sql`CREATE TABLE IF NOT EXISTS ds_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await q.rows<{ version: number }>(sql`SELECT version FROM ds_migrations ORDER BY version`);
    const applied = new Set(done.map((r) => Number(r.version)));
    const newest = Math.max(0, ...applied);
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (newest > known) {
      throw new Error(`database schema is at version ${newest} but this build knows only up to ${known}; upgrade the server`);
    }
    const ran: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await q.exec(m.sql);
      await q.rows(sql`INSERT INTO ds_migrations (version, name) VALUES (${m.version}, ${m.name})`);
      ran.push(m.version);
    }
    return ran;
  });
}
