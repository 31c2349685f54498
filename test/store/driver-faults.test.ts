// A backend of the pool dies while a transaction or a COPY read is in flight (Postgres
// restart, pg_terminate_backend, a crash): the process survives and the pool serves again
// at once. postgres.js 3.4.9 fails this on Bun and Deno (it crashes from a timer writing to
// the closed socket, and a reserved connection released after its socket closed wedges
// the pool); patches/postgres+3.4.9.patch, applied by npm's postinstall, fixes both.
// Runs the probe in its own process per runtime, so a crash is seen as one. Needs DATABASE_URL.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { dropSchema, uniqueSchema } from "../support/backends.ts";
import { ROOT } from "../support/spawn-server.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
if (!DATABASE_URL) console.warn("test/store/driver-faults.test.ts: SKIPPED (set DATABASE_URL)");
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

describe.skipIf(!DATABASE_URL)("pool survives a backend dying mid-query", () => {
  for (const runtime of ["bun", "deno"]) {
    test(`${runtime}: transaction and reserved COPY read cut off, no crash, pool usable again`, () => {
      const schema = uniqueSchema("drv");
      schemas.push(schema);
      const args = runtime === "bun" ? ["test/support/driver-fault-probe.ts"] : ["run", "-A", "test/support/driver-fault-probe.ts"];
      const r = spawnSync(join(ROOT, "node_modules/.bin", runtime), args, {
        cwd: ROOT,
        env: { ...process.env, PROBE_DATABASE_URL: DATABASE_URL, PROBE_SCHEMA: schema },
        encoding: "utf8",
        timeout: 60_000,
      });
      const line = r.stdout.trim().split("\n").at(-1) ?? "";
      if (r.status !== 0) console.log(r.stdout, r.stderr);
      expect({ exit: r.status, signal: r.signal }).toEqual({ exit: 0, signal: null });
      const res = JSON.parse(line);
      console.log(`${runtime}: ${line}`);
      expect(res.tx).toBe("unavailable");
      expect(res.copy).toBe("unavailable");
      for (const k of ["txRecoveredMs", "copyRecoveredMs", "parallelRecoveredMs", "copiesRecoveredMs"]) {
        expect({ [k]: res[k] >= 0 && res[k] < 2_000 }).toEqual({ [k]: true });
      }
    }, 70_000);
  }
});
