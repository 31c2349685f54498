// The streams as SQL (migrations/0010): ds_messages lists, per stream, exactly what a read
// returns, one row per message, with the offsets reads hand out. Compared here with the
// store's own reads (what GET serves) on PGlite and Postgres.
import { describe, expect, test } from "bun:test";
import { appendGroup, type AppendRequest } from "../../src/store/streams/append.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import type { CreateParams } from "../../src/store/streams/streams.ts";
import { visible } from "../../src/store/streams/streams.ts";
import { formatOffset } from "../../src/protocol/offsets.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";
import { jsonMessages } from "../support/json.ts";

const BINARY = "application/octet-stream";
const JSON_TYPE = "application/json";
const enc = new TextEncoder();
const piece = (i: number, n = 100) => new Uint8Array(n).fill(65 + (i % 26));

const params = (path: string, contentType: string, over: Partial<CreateParams> = {}): CreateParams => createParams(path, { contentType, ...over });
const req = (path: string, body: Uint8Array, contentType = BINARY, messages: Uint8Array[] | null = null): AppendRequest =>
  appendRequest(path, body, { contentType, messages: messages && jsonMessages(messages) });

interface ViewRow {
  stream: string;
  stream_offset: string;
  content_type: string;
  data: Uint8Array;
  message: unknown;
}

for (const backend of backends) {
  describe(`ds_messages on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, {}, (opened) => ({ db, store } = opened));

    const view = async (path: string, after = "") =>
      (await db.rows<ViewRow>(
        sql`SELECT stream, stream_offset, content_type, data, message FROM ds_messages
            WHERE stream = ${path} AND stream_offset > ${after} ORDER BY stream_offset`,
      )).map((r) => ({ ...r, data: new Uint8Array(r.data) }));
    /** Every unit a read returns from `from`, as the store serves GET. */
    const readAll = async (path: string, from = 0) => {
      const s = visible(await store.find(path));
      const units: Uint8Array[] = [];
      while (from < s.tail) {
        const r = await store.read(s, from, 1 << 20);
        units.push(...r.units);
        from = r.next;
      }
      return units;
    };
    const joined = (parts: Uint8Array[]) => Buffer.concat(parts).toString("latin1");

    test("binary: one row per append (shared chunk rows cut apart), offsets are each append's Stream-Next-Offset", async () => {
      await store.create(params("/v/bin", BINARY));
      const tails: number[] = [];
      // 30 small appends in one group share 2 chunk rows; then a large one on its own row.
      const group = await appendGroup(db, store.channel, Array.from({ length: 30 }, (_, i) => req("/v/bin", piece(i))));
      for (const r of group) tails.push(("ok" in r && r.ok && r.value.tail) as number);
      tails.push((await store.append(req("/v/bin", piece(30, 5000)))).tail);
      const rows = await view("/v/bin");
      expect(rows.length).toBe(31);
      expect(rows.map((r) => r.stream_offset)).toEqual(tails.map(formatOffset));
      expect(rows.every((r) => r.content_type === BINARY && r.message === null)).toBe(true);
      expect(rows[3].data).toEqual(piece(3));
      expect(rows[30].data).toEqual(piece(30, 5000));
      expect(joined(rows.map((r) => r.data))).toBe(joined(await readAll("/v/bin")));
      // Resuming after a held offset returns what GET ?offset= returns from there.
      expect(joined((await view("/v/bin", formatOffset(1200))).map((r) => r.data))).toBe(joined(await readAll("/v/bin", 1200)));
    });

    test("JSON: one row per message with its jsonb; a message jsonb cannot hold keeps its bytes", async () => {
      await store.create(params("/v/json", JSON_TYPE));
      const msgs = [{ n: 1, kind: "a" }, [1, 2], "text", { n: 2, kind: "b", s: "caf\u00e9" }, { nul: "a\u0000b" }];
      const units = msgs.map((m) => enc.encode(JSON.stringify(m)));
      // One batch of three messages, then two single ones.
      await store.append(req("/v/json", enc.encode(JSON.stringify(msgs.slice(0, 3))), JSON_TYPE, units.slice(0, 3)));
      for (const u of units.slice(3)) await store.append(req("/v/json", u, JSON_TYPE, [u]));
      const rows = await view("/v/json");
      expect(rows.map((r) => r.stream_offset)).toEqual([1, 2, 3, 4, 5].map(formatOffset));
      expect(rows.map((r) => r.message)).toEqual([...msgs.slice(0, 4), null]);
      expect(rows.map((r) => new TextDecoder().decode(r.data))).toEqual(units.map((u) => new TextDecoder().decode(u)));
      expect(rows.map((r) => joined([r.data]))).toEqual((await readAll("/v/json")).map((u) => joined([u])));
      // Example from the notes: filter and project inside JSON messages.
      const kinds = await db.rows<{ kind: string }>(
        sql`SELECT message->>'kind' AS kind FROM ds_messages WHERE stream = '/v/json' AND message ? 'kind' ORDER BY stream_offset`,
      );
      expect(kinds.map((k) => k.kind)).toEqual(["a", "b"]);
    });

    test.skipIf(backend.name !== "postgres")("ds_message_jsonb runs where a parallel plan would put it (never in a worker: its subtransaction may not)", async () => {
      // force_parallel_mode runs every query it can in a worker; a function marked PARALLEL SAFE
      // whose EXCEPTION block starts a subtransaction fails there with 25000 (the retention
      // pass over a 1M-message stream got such a plan).
      const got = await db.tx(async (q) => {
        await q.rows(sql`SET LOCAL force_parallel_mode = on`);
        return q.rows<{ n: string }>(sql`SELECT count(ds_message_jsonb(data))::text AS n FROM ds_chunks`);
      });
      expect(Number(got[0].n)).toBeGreaterThanOrEqual(0);
    });

    test("a fork lists the source's messages up to the fork point (cut as reads cut) and then its own", async () => {
      await store.create(params("/v/fork", BINARY, { contentTypeGiven: false, fork: { sourcePath: "/v/bin", offset: 1800, subOffset: 40 } }));
      await store.append(req("/v/fork", piece(40, 7)));
      const rows = await view("/v/fork");
      expect(rows.length).toBe(20); // 18 whole appends, 40 bytes of the 19th, its own append
      expect(rows[18]).toMatchObject({ stream: "/v/fork", stream_offset: formatOffset(1840) });
      expect(rows[18].data.byteLength).toBe(40);
      expect(rows[19].stream_offset).toBe(formatOffset(1847));
      expect(joined(rows.map((r) => r.data))).toBe(joined(await readAll("/v/fork")));
      // A fork of a fork, of JSON.
      await store.create(params("/v/jfork", JSON_TYPE, { contentTypeGiven: false, fork: { sourcePath: "/v/json", offset: 2, subOffset: 0 } }));
      const u = enc.encode(JSON.stringify({ own: true }));
      await store.append(req("/v/jfork", u, JSON_TYPE, [u]));
      await store.create(params("/v/jfork2", JSON_TYPE, { contentTypeGiven: false, fork: { sourcePath: "/v/jfork", offset: 3, subOffset: 0 } }));
      const deep = await view("/v/jfork2");
      expect(deep.map((r) => r.message)).toEqual([{ n: 1, kind: "a" }, [1, 2], { own: true }]);
      expect(deep.map((r) => r.stream_offset)).toEqual([1, 2, 3].map(formatOffset));
    });

    test("deleted streams are not listed; a fork of a deleted source still lists what it inherited", async () => {
      await store.create(params("/v/gone", BINARY));
      await store.append(req("/v/gone", piece(1)));
      await store.create(params("/v/keeps", BINARY, { contentTypeGiven: false, fork: { sourcePath: "/v/gone", offset: null, subOffset: 0 } }));
      await store.delete("/v/gone");
      expect(await view("/v/gone")).toEqual([]);
      expect((await view("/v/keeps")).map((r) => r.data)).toEqual([piece(1)]);
    });

    test("joins two streams (example from the notes)", async () => {
      await store.create(params("/v/orders", JSON_TYPE));
      await store.create(params("/v/payments", JSON_TYPE));
      const put = (path: string, m: unknown) => {
        const b = enc.encode(JSON.stringify(m));
        return store.append(req(path, b, JSON_TYPE, [b]));
      };
      await put("/v/orders", { order: 1, item: "tea" });
      await put("/v/orders", { order: 2, item: "cake" });
      await put("/v/payments", { order: 2, paid: 5 });
      const unpaid = await db.rows<{ item: string }>(sql`
        SELECT o.message->>'item' AS item
        FROM ds_messages o
        LEFT JOIN ds_messages p ON p.stream = '/v/payments' AND p.message->'order' = o.message->'order'
        WHERE o.stream = '/v/orders' AND p.stream IS NULL`);
      expect(unpaid).toEqual([{ item: "tea" }]);
    });

    test("role ds_reader may read ds_messages and nothing else", async () => {
      const role = await db.rows<{ ok: boolean }>(sql`SELECT to_regrole('ds_reader') IS NOT NULL AS ok`);
      expect(role[0].ok).toBe(true);
      const can = await db.rows<Record<string, boolean>>(sql`SELECT
        has_table_privilege('ds_reader', 'ds_messages', 'SELECT') AS view_select,
        has_table_privilege('ds_reader', 'ds_messages', 'INSERT') AS view_insert,
        has_table_privilege('ds_reader', 'ds_chunks', 'SELECT') AS chunks,
        has_table_privilege('ds_reader', 'ds_streams', 'SELECT') AS streams`);
      expect(can[0]).toEqual({ view_select: true, view_insert: false, chunks: false, streams: false });
      // As the role itself: the view answers, the tables behind it refuse.
      const asReader = <T>(query: ReturnType<typeof sql>) =>
        db.tx(async (q) => {
          await q.exec("SET LOCAL ROLE ds_reader");
          return q.rows<T>(query);
        });
      const rows = await asReader<{ n: unknown }>(sql`SELECT count(*) AS n FROM ds_messages WHERE stream = '/v/json'`);
      expect(Number(rows[0].n)).toBe(5);
      await expect(asReader(sql`SELECT 1 FROM ds_chunks LIMIT 1`)).rejects.toThrow(/permission denied/);
    });
  });
}
