// Small binary appends committed in one group share chunk rows (store/streams/chunks.ts,
// mergeAppends). Nothing a client sees may change: reads from any offset return the same
// bytes, a fork's sub-offset still stops at the end of the append holding its anchor, and
// JSON streams keep one row per message.
import { describe, expect, test } from "bun:test";
import { BadRequest } from "../../src/protocol/errors.ts";
import { appendGroup, type AppendRequest } from "../../src/store/streams/append.ts";
import { MERGED_ROW_BYTES, mergeAppends } from "../../src/store/streams/chunks.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import type { CreateParams } from "../../src/store/streams/streams.ts";
import { visible } from "../../src/store/streams/streams.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";
import { jsonMessages } from "../support/json.ts";

const BINARY = "application/octet-stream";
/** Append i: 100 bytes of one letter, so every append is told apart in what is read back. */
const piece = (i: number) => new Uint8Array(100).fill(65 + (i % 26));
const text = (parts: Uint8Array[]) => parts.map((p) => new TextDecoder().decode(p)).join("");
const expected = (n: number) => text(Array.from({ length: n }, (_, i) => piece(i)));

const params = (path: string, contentType: string, over: Partial<CreateParams> = {}): CreateParams => createParams(path, { contentType, ...over });

const req = (path: string, body: Uint8Array, contentType = BINARY, messages: Uint8Array[] | null = null): AppendRequest =>
  appendRequest(path, body, { contentType, messages: messages && jsonMessages(messages) });

describe("mergeAppends", () => {
  const row = (streamId: number, start: number, bytes: number) => ({ streamId, start, end: start + bytes, batchEnd: start + bytes, data: new Uint8Array(bytes) });

  test("merges contiguous rows of one stream up to the size limit, keeping each append's end", () => {
    const rows = Array.from({ length: 30 }, (_, i) => row(7, i * 100, 100));
    const merged = mergeAppends(rows);
    expect(merged.map((r) => [r.start, r.end, r.data.byteLength])).toEqual([[0, 1900, 1900], [1900, 3000, 1100]]);
    expect(merged[0].appendEnds).toEqual(Array.from({ length: 19 }, (_, i) => (i + 1) * 100));
    expect(merged[1].batchEnd).toBe(3000);
  });

  test("leaves alone a single append, a large one, and rows that are not contiguous", () => {
    const big = row(7, 0, MERGED_ROW_BYTES + 1);
    expect(mergeAppends([big])).toEqual([big]);
    const a = row(7, 0, 10);
    const b = row(7, 20, 10); // a gap: not the next position
    const c = row(8, 30, 10); // another stream
    expect(mergeAppends([a, b, c])).toEqual([a, b, c]);
    expect(mergeAppends([row(7, 0, 10)])[0].appendEnds).toBeUndefined();
  });
});

for (const backend of backends) {
  describe(`shared chunk rows on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, {}, (opened) => ({ db, store } = opened));

    const rowsOf = async (path: string) => {
      const rows = await db.rows<{ n: unknown }>(
        sql`SELECT count(*) AS n FROM ds_chunks c JOIN ds_streams s ON s.id = c.stream_id WHERE s.path = ${path}`,
      );
      return Number(rows[0].n);
    };
    const readFrom = async (path: string, from: number) => {
      const s = visible(await store.find(path));
      let out = "";
      while (from < s.tail) {
        const r = await store.read(s, from, 1 << 20);
        out += text(r.units);
        from = r.next;
      }
      return out;
    };

    test("30 appends of 100 bytes in one group: 2 rows, the same bytes from every offset", async () => {
      await store.create(params("/m/bin", BINARY));
      const out = await appendGroup(db, store.channel, Array.from({ length: 30 }, (_, i) => req("/m/bin", piece(i))));
      expect(out.map((r) => "ok" in r && r.ok && r.value.tail)).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 100));
      expect(await rowsOf("/m/bin")).toBe(2);
      const all = expected(30);
      expect(await readFrom("/m/bin", 0)).toBe(all);
      for (const from of [100, 150, 1899, 1900, 2950]) expect(await readFrom("/m/bin", from)).toBe(all.slice(from));
    });

    test("a fork's sub-offset stops at the end of the append holding its anchor, inside a shared row too", async () => {
      const fork = (path: string, offset: number, subOffset: number) =>
        store.create(params(path, BINARY, { contentTypeGiven: false, fork: { sourcePath: "/m/bin", offset, subOffset } }));
      const all = expected(30);
      await fork("/m/f1", 100, 100); // the whole second append
      expect(await readFrom("/m/f1", 0)).toBe(all.slice(0, 200));
      await fork("/m/f2", 1800, 40); // inside the first row's last append
      expect(await readFrom("/m/f2", 0)).toBe(all.slice(0, 1840));
      await fork("/m/f3", 1900, 100); // the second row's first append
      expect(await readFrom("/m/f3", 0)).toBe(all.slice(0, 2000));
      await expect(fork("/m/f4", 100, 101)).rejects.toBeInstanceOf(BadRequest);
      await expect(fork("/m/f5", 1800, 101)).rejects.toBeInstanceOf(BadRequest);
      await expect(fork("/m/f6", 0, 101)).rejects.toBeInstanceOf(BadRequest);
    });

    test("appends added later go on from the shared rows' end", async () => {
      await appendGroup(db, store.channel, [req("/m/bin", piece(30)), req("/m/bin", piece(31))]);
      expect(await rowsOf("/m/bin")).toBe(3);
      expect(await readFrom("/m/bin", 0)).toBe(expected(32));
    });

    test("a JSON stream keeps one row per message", async () => {
      const json = "application/json";
      await store.create(params("/m/json", json));
      const msg = (i: number) => new TextEncoder().encode(JSON.stringify({ i }));
      await appendGroup(db, store.channel, Array.from({ length: 10 }, (_, i) => req("/m/json", msg(i), json, [msg(i)])));
      expect(await rowsOf("/m/json")).toBe(10);
    });
  });
}
