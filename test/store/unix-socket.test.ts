// DATABASE_URL may name Postgres' Unix socket the way libpq does (`?host=/socket/dir`):
// the URL is parsed here, and with DATABASE_URL the real server runs over the socket on
// Bun and on Deno, its pool and its listeners alike.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { driverTarget } from "../../src/store/driver/target.ts";
import { dropSchema, uniqueSchema } from "../support/backends.ts";
import { spawnServer } from "../support/spawn-server.ts";

describe("driverTarget", () => {
  test("a TCP URL is left alone, query and all", () => {
    for (const url of ["postgres://u@db:5432/x", "postgres://u@db/x?sslmode=require", "postgres://u@db/x?host=db2"]) {
      expect(driverTarget(url)).toEqual({ url });
    }
  });

  test("host=/dir becomes the socket file of the URL's port, and leaves the query", () => {
    expect(driverTarget("postgres://u@localhost/x?host=/var/run/postgresql")).toEqual({
      url: "postgres://u@localhost/x",
      path: "/var/run/postgresql/.s.PGSQL.5432",
    });
    expect(driverTarget("postgres://u:p@localhost:5433/x?sslmode=disable&host=%2Ftmp%2F")).toEqual({
      url: "postgres://u:p@localhost:5433/x?sslmode=disable",
      path: "/tmp/.s.PGSQL.5433",
    });
  });
});

const DATABASE_URL = process.env.DATABASE_URL || "";
if (!DATABASE_URL) console.warn("test/store/unix-socket.test.ts: SKIPPED (set DATABASE_URL)");
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

describe.skipIf(!DATABASE_URL)("the server over Postgres' Unix socket", () => {
  const admin = () => postgres(DATABASE_URL, { max: 1, onnotice: () => {} });

  for (const runtime of ["bun", "deno"] as const) {
    test(`${runtime}: appends and reads, every connection on the socket`, async () => {
      const sql = admin();
      try {
        const [{ dir, port }] = await sql`SELECT split_part(current_setting('unix_socket_directories'), ',', 1) AS dir,
                                                current_setting('port') AS port`;
        expect(dir).toStartWith("/");
        const u = new URL(DATABASE_URL);
        const socketUrl = `postgres://${u.username || "postgres"}@localhost:${port}${u.pathname}?host=${encodeURIComponent(dir)}`;
        const schema = uniqueSchema("sock");
        schemas.push(schema);
        const s = await spawnServer({ runtime, databaseUrl: socketUrl, schema, quiet: true });
        try {
          const stream = `${s.url}/v1/stream/over-socket`;
          expect((await fetch(stream, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);
          for (const part of ["a", "b", "c"]) {
            expect((await fetch(stream, { method: "POST", headers: { "Content-Type": "text/plain" }, body: part })).status).toBe(204);
          }
          expect(await (await fetch(`${stream}?offset=-1`)).text()).toBe("abc");
          // The pool and both listeners: Postgres shows a socket connection without a client address.
          const conns = await sql`SELECT application_name AS app, client_addr IS NULL AS socket FROM pg_stat_activity
                                  WHERE application_name = 'pg-durable-streams' OR application_name LIKE ${`listen ds_${schema}_%`}`;
          // (Other tests' servers may hold TCP connections of the same name: one on the socket is ours.)
          expect(conns.some((c) => c.app === "pg-durable-streams" && c.socket)).toBe(true);
          const listeners = conns.filter((c) => c.app.startsWith("listen "));
          expect(listeners.length).toBe(2);
          expect(listeners.every((c) => c.socket)).toBe(true);
        } finally {
          await s.stop();
        }
      } finally {
        await sql.end();
      }
    }, 60_000);
  }
});
