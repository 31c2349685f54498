// Catch-up reads on Postgres use binary COPY. The connection must stay usable after a
// COPY of rows larger than the stream buffer (a paused socket would hang the next query).
import { describe, expect, test } from "bun:test";
import { openDb, sql } from "../../src/store/driver/db.ts";
import { migrate } from "../../src/store/migrate.ts";
import { Store } from "../../src/store/index.ts";
import { parseCopyBinary, parseCopyBinaryParts, int8 } from "../../src/store/driver/copy-binary.ts";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";
import { appendRequest, createParams } from "../support/store-fixture.ts";

describe.skipIf(!databaseUrl)("binary COPY reads on Postgres", () => {
  test("large rows come back byte-exact and the single pooled connection stays usable", async () => {
    const schema = uniqueSchema("copy");
    const db = await openDb({ databaseUrl, schema, poolSize: 1 });
    try {
      await migrate(db);
      const store = new Store(db, { appendBatchMax: 8 });
      const contentType = "application/octet-stream";
      await store.create(createParams("/c/x", { contentType }));
      const blob = new Uint8Array(100 * 1024).map((_, i) => i % 256);
      const APPENDS = 3;
      for (let i = 0; i < APPENDS; i++) {
        await store.append(appendRequest("/c/x", blob, { contentType }));
      }
      const s = (await store.find("/c/x"))!;
      for (let round = 0; round < 5; round++) {
        // an ordinary query queued on the same connection behind the COPY must complete too
        const [r] = await Promise.race([
          Promise.all([store.read(s, round * 1000, 1 << 20), db.rows(sql`SELECT 2 AS n`)]),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error("read hung")), 5_000)),
        ]);
        const got = Buffer.concat(r.units);
        expect(got.byteLength).toBe(APPENDS * blob.byteLength - round * 1000);
        expect(r.units.length).toBe(APPENDS); // one COPY row per append, each larger than the buffer
        expect(got.subarray(0, 100)).toEqual(Buffer.from(blob.subarray(round * 1000, round * 1000 + 100)));
        // the same (only) connection answers an ordinary query right after
        const q = await Promise.race([
          db.rows<{ n: number }>(sql`SELECT 1 AS n`),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error("connection stuck after COPY")), 5_000)),
        ]);
        expect(q[0].n).toBe(1);
      }
    } finally {
      await db.close();
      await dropSchema(schema);
    }
  });
});

describe("binary COPY parser", () => {
  test("reads header, tuples, NULLs and the trailer", () => {
    const parts: number[] = [...Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), 0, 0, 0, 0, 0, 0, 0, 0];
    const field = (bytes: number[]) => [...Buffer.from(new Int32Array([0]).buffer)].slice(0, 0).concat(
      [(bytes.length >>> 24) & 255, (bytes.length >>> 16) & 255, (bytes.length >>> 8) & 255, bytes.length & 255], bytes);
    const int8be = (n: number) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(n)); return [...b]; };
    parts.push(0, 3, ...field(int8be(7)), ...field(int8be(12)), ...field([1, 2, 3]));
    parts.push(0, 3, ...field(int8be(12)), 255, 255, 255, 255, ...field([]));
    parts.push(255, 255);
    const rows = parseCopyBinary(new Uint8Array(parts));
    expect(rows.length).toBe(2);
    expect(int8(rows[0][0])).toBe(7);
    expect(int8(rows[0][1])).toBe(12);
    expect([...rows[0][2]!]).toEqual([1, 2, 3]);
    expect(rows[1][1]).toBeNull();
    expect(rows[1][2]!.byteLength).toBe(0);
    expect(() => parseCopyBinary(new Uint8Array(20))).toThrow();
    // split at every possible point: parts parse to the same tuples (views or joined)
    const whole = new Uint8Array(parts);
    for (let cut = 20; cut < whole.length - 1; cut++) {
      const split = parseCopyBinaryParts([whole.subarray(0, cut), whole.subarray(cut)]);
      expect(split.map((r) => r.map((f) => (f ? [...f] : null)))).toEqual(rows.map((r) => r.map((f) => (f ? [...f] : null))));
    }
  });
});
