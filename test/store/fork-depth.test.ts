// MAX_FORK_DEPTH (issue 25): a fork of a fork of ... deeper than the cap is refused with
// 400 and nothing is created. In the store on PGlite and (with DATABASE_URL) Postgres, and
// through HTTP on Bun and Deno.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BadRequest } from "../../src/protocol/errors.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { MAX_FORK_DEPTH_DEFAULT, Store } from "../../src/store/index.ts";
import type { CreateParams } from "../../src/store/streams/streams.ts";
import { backends } from "../support/backends.ts";
import { createParams } from "../support/store-fixture.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const params = (path: string, sourcePath?: string): CreateParams =>
  createParams(path, { body: new TextEncoder().encode(path), ...(sourcePath ? { fork: { sourcePath, offset: null, subOffset: 0 } } : {}) });

for (const backend of backends) {
  describe(`fork depth on ${backend.name}`, () => {
    let db: Db;
    beforeAll(async () => {
      db = await backend.open();
    }, 60_000);
    afterAll(() => db?.close());
    const refCount = async (path: string) =>
      Number((await db.rows<{ n: unknown }>(sql`SELECT ref_count AS n FROM ds_streams WHERE path = ${path}`))[0].n);

    test("a chain may grow to maxForkDepth forks, not one further; nothing of the refused fork is stored", async () => {
      const store = new Store(db, { maxForkDepth: 3 });
      await store.create(params("/d/0"));
      for (let i = 1; i <= 3; i++) expect((await store.create(params(`/d/${i}`, `/d/${i - 1}`))).created).toBe(true);
      const err = await store.create(params("/d/4", "/d/3")).catch((e) => e);
      expect(err).toBeInstanceOf(BadRequest);
      expect(err.message).toContain("MAX_FORK_DEPTH");
      expect(await store.find("/d/4")).toBeUndefined();
      expect(await refCount("/d/3")).toBe(0);
      // Earlier links can still be forked (a sibling branch), and so can a fresh stream.
      expect((await store.create(params("/d/2b", "/d/1"))).created).toBe(true);
      expect((await store.create(params("/d/3b", "/d/2b"))).created).toBe(true);
      await expect(store.create(params("/d/4b", "/d/3b"))).rejects.toBeInstanceOf(BadRequest);
      await store.drained();
    }, 30_000);

    test(`the default: ${MAX_FORK_DEPTH_DEFAULT} deep`, async () => {
      const store = new Store(db);
      await store.create(params("/e/0"));
      for (let i = 1; i <= MAX_FORK_DEPTH_DEFAULT; i++) await store.create(params(`/e/${i}`, `/e/${i - 1}`));
      const last = `/e/${MAX_FORK_DEPTH_DEFAULT}`;
      await expect(store.create(params("/e/over", last))).rejects.toBeInstanceOf(BadRequest);
      expect(await store.find("/e/over")).toBeUndefined();
      await store.drained();
    }, 30_000);
  });
}

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`fork depth over HTTP on ${runtime}`, () => {
    let server: SpawnedServer;
    const ahead = spawnAhead({ runtime, quiet: true, env: { MAX_FORK_DEPTH: "2" } });
    beforeAll(async () => {
      server = await ahead();
    }, 60_000);
    afterAll(() => server?.stop(), 60_000);

    test("the third fork in a chain gets 400 naming the setting, and is not created", async () => {
      const base = `${server.url}/v1/stream`;
      const put = (path: string, from?: string) =>
        fetch(`${base}/${path}`, {
          method: "PUT",
          headers: { "Content-Type": "text/plain", ...(from ? { "Stream-Forked-From": `/v1/stream/${from}` } : {}) },
        });
      expect((await put("c0")).status).toBe(201);
      expect((await put("c1", "c0")).status).toBe(201);
      expect((await put("c2", "c1")).status).toBe(201);
      const refused = await put("c3", "c2");
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain("MAX_FORK_DEPTH");
      expect((await fetch(`${base}/c3?offset=-1`)).status).toBe(404);
    }, 20_000);
  });
}
