import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb, sql } from "../../src/store/driver/db.ts";
import { loadMigrations, migrate } from "../../src/store/migrate.ts";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";

describe("migrations", () => {
  test("ship as numbered plain SQL files, in order", () => {
    const ms = loadMigrations();
    expect(ms.length).toBeGreaterThan(0);
    expect(ms.map((m) => m.version)).toEqual([...ms.map((m) => m.version)].sort((a, b) => a - b));
    expect(ms[0].name).toBe("0001_init.sql");
  });

  test("apply once on PGlite and refuse a database newer than the code", async () => {
    const db = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1 });
    try {
      expect((await migrate(db)).length).toBe(loadMigrations().length);
      expect(await migrate(db)).toEqual([]);
      await db.rows(sql`INSERT INTO ds_migrations (version, name) VALUES (9999, 'from-the-future.sql')`);
      await expect(migrate(db)).rejects.toThrow(/newer|version 9999/);
    } finally {
      await db.close();
    }
  });

  test("a failing migration leaves nothing half-applied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ds-mig-"));
    writeFileSync(join(dir, "0001_ok.sql"), "CREATE TABLE t_ok (x int);");
    writeFileSync(join(dir, "0002_bad.sql"), "CREATE TABLE t_bad (x int); SELECT * FROM no_such_table;");
    const db = await openDb({ dataDir: "memory://", schema: "public", poolSize: 1 });
    try {
      await expect(migrate(db, loadMigrations(dir))).rejects.toThrow();
      const rows = await db.rows(sql`SELECT to_regclass('t_ok') AS t`);
      expect(rows[0].t).toBeNull();
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(!databaseUrl)("on a shared Postgres", () => {
    const schema = uniqueSchema("mig");
    afterAll(() => dropSchema(schema));

    test("instances starting together apply each migration exactly once", async () => {
      const dbs = await Promise.all(Array.from({ length: 4 }, () => openDb({ databaseUrl, schema, poolSize: 2 })));
      try {
        const ran = await Promise.all(dbs.map((db) => migrate(db)));
        expect(ran.flat().sort((a, b) => a - b)).toEqual(loadMigrations().map((m) => m.version));
        const rows = await dbs[0].rows<{ n: unknown }>(sql`SELECT count(*) AS n FROM ds_migrations`);
        expect(Number(rows[0].n)).toBe(loadMigrations().length);
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
      }
    });
  });
});
