// Retention (issue 28): age and size policies, 410 below the earliest offset, forks,
// concurrent passes and restarts, operator rules. PGlite and (with DATABASE_URL) Postgres.
import { describe, expect, test } from "bun:test";
import { Conflict, OffsetGone } from "../../src/protocol/errors.ts";
import { formatOffset } from "../../src/protocol/offsets.ts";
import { NO_POLICY, type RetentionPolicy } from "../../src/protocol/retention.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import type { CreateParams } from "../../src/store/streams/streams.ts";
import { visible } from "../../src/store/streams/streams.ts";
import { claimDue, databaseNow } from "../../src/store/streams/retention.ts";
import { RetentionRunner } from "../../src/retention/runner.ts";
import { RetentionRules } from "../../src/retention/rules.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";
import { jsonMessages } from "../support/json.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const dec = (parts: Uint8Array[]) => parts.map((p) => new TextDecoder().decode(p)).join("");
let n = 0;
const uniq = (name: string) => `/v1/stream/${name}-${n++}`;

const params = (path: string, retention: Partial<RetentionPolicy> = {}, over: Partial<CreateParams> = {}): CreateParams =>
  createParams(path, { retention: { ...NO_POLICY, ...retention }, ...over });

const append = (store: Store, path: string, text: string) => store.append(appendRequest(path, text));

/** Appends `count` separate appends of `size` bytes (one row each): "a0..." "a1..." */
async function fill(store: Store, path: string, count: number, size = 100): Promise<void> {
  for (let i = 0; i < count; i++) await append(store, path, String(i % 10).repeat(size));
}

async function readFrom(store: Store, path: string, from: number): Promise<string> {
  const s = visible(await store.find(path));
  let out = "";
  let at = from;
  while (at < s.tail) {
    const r = await store.read(s, at, 1 << 20);
    out += dec(r.units);
    at = r.next;
  }
  return out;
}

async function gone(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (!(err instanceof OffsetGone)) throw err;
    return err.headers["Stream-Earliest-Offset"];
  }
}

const runner = (db: Db, rules: RetentionRules = new RetentionRules([]), over = {}) =>
  new RetentionRunner(db, rules, { intervalMs: 0, deleteGraceMs: 0, batchRows: 3, ...over });

for (const backend of backends) {
  describe(`retention on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, { appendBatchMax: 64 }, (opened) => ({ db, store } = opened));

    test("size: whole rows go from the front, the earliest offset moves, offsets stay", async () => {
      const path = uniq("size");
      await store.create(params(path, { maxBytes: 350 }));
      await fill(store, path, 10);
      const before = visible(await store.find(path));
      const result = await runner(db).pass();
      expect(result.rows).toBe(7);
      expect(result.bytes).toBe(700);
      const s = visible(await store.find(path));
      expect(s.earliest).toBe(700);
      expect(s.tail).toBe(before.tail);
      expect(s.retained).toBe(true);
      // Below the earliest: 410 with the earliest offset, before any chunk is read.
      expect(await gone(store.read(s, 0, 1 << 20))).toBe(formatOffset(700));
      expect(await gone(store.read(s, 699, 1 << 20))).toBe(formatOffset(700));
      expect(await readFrom(store, path, 700)).toBe("7".repeat(100) + "8".repeat(100) + "9".repeat(100));
      // Offsets never change: the same offset names the same byte.
      expect(await readFrom(store, path, 850)).toBe("8".repeat(50) + "9".repeat(100));
    });

    test("age: rows older than the limit go, the young ones stay", async () => {
      const path = uniq("age");
      await store.create(params(path, { maxAgeSeconds: 60 }));
      await fill(store, path, 4);
      const s0 = visible(await store.find(path));
      await db.rows(sql`UPDATE ds_chunks SET appended_at = now() - interval '2 minutes' WHERE stream_id = ${s0.id} AND start_pos < 200`);
      await runner(db).pass();
      const s = visible(await store.find(path));
      expect(s.earliest).toBe(200);
      expect(await readFrom(store, path, 200)).toBe("2".repeat(100) + "3".repeat(100));
    });

    test("a reader holding the stream row from before the pass gets 410, never skipped data", async () => {
      const path = uniq("race");
      await store.create(params(path, { maxBytes: 100 }));
      await fill(store, path, 5);
      const stale = visible(await store.find(path));
      expect(stale.earliest).toBe(0);
      await runner(db).pass();
      expect(await gone(store.read(stale, 0, 1 << 20))).toBe(formatOffset(400));
      expect(await gone(store.read(stale, 250, 1 << 20))).toBe(formatOffset(400));
    });

    test("rows shared by small appends of one group go together; the cut is a row boundary", async () => {
      const path = uniq("shared");
      await store.create(params(path, { maxBytes: 150 }));
      await Promise.all(Array.from({ length: 10 }, (_, i) => append(store, path, String(i).repeat(30))));
      const s0 = visible(await store.find(path));
      const rows = await db.rows<{ start_pos: unknown; end_pos: unknown }>(
        sql`SELECT start_pos, end_pos FROM ds_chunks WHERE stream_id = ${s0.id} ORDER BY start_pos`,
      );
      await runner(db).pass();
      const s = visible(await store.find(path));
      const starts = rows.map((r) => Number(r.start_pos));
      expect([...starts, s0.tail]).toContain(s.earliest);
      expect(s0.tail - s.earliest).toBeLessThanOrEqual(Math.max(150, s0.tail - starts[starts.length - 1]));
      const all = Array.from({ length: 10 }, (_, i) => String(i).repeat(30)).join("");
      expect(await readFrom(store, path, s.earliest)).toBe(all.slice(s.earliest));
    });

    test("forks: the source's retention cuts a fork's inherited view with 410; the fork's own data stays", async () => {
      const src = uniq("src");
      await store.create(params(src, { maxBytes: 200 }));
      await fill(store, src, 6);
      const fork = uniq("fork");
      await store.create(params(fork, {}, { fork: { sourcePath: src, offset: 300, subOffset: 0 } }));
      await append(store, fork, "f".repeat(50));
      await runner(db).pass();
      expect(visible(await store.find(src)).earliest).toBe(400);
      const f = visible(await store.find(fork));
      // Rows of the source below the fork point are gone: the fork's view starts at its own data.
      expect(f.earliest).toBe(300);
      expect(f.retained).toBe(true);
      expect(await gone(store.read(f, 0, 1 << 20))).toBe(formatOffset(300));
      expect(await readFrom(store, fork, 300)).toBe("f".repeat(50));
      // A fork whose point is above the cut keeps reading what it inherited, whole.
      const late = uniq("late");
      await store.create(params(late, {}, { fork: { sourcePath: src, offset: 500, subOffset: 0 } }));
      const l = visible(await store.find(late));
      expect(l.earliest).toBe(400);
      expect(await readFrom(store, late, 400)).toBe("4".repeat(100));
    });

    test("a fork's own policy removes only its own rows; its inherited prefix follows the source", async () => {
      const src = uniq("src2");
      await store.create(params(src));
      await fill(store, src, 2);
      const fork = uniq("fork2");
      await store.create(params(fork, { maxBytes: 100 }, { fork: { sourcePath: src, offset: null, subOffset: 0 } }));
      await fill(store, fork, 3);
      await runner(db).pass();
      const f = visible(await store.find(fork));
      expect(f.earliest).toBe(400);
      expect(await readFrom(store, src, 0)).toBe("0".repeat(100) + "1".repeat(100));
    });

    test("a fork's own policy with nothing of its own to remove leaves its inherited view alone", async () => {
      const src = uniq("src3");
      await store.create(params(src));
      await fill(store, src, 3);
      const fork = uniq("fork3");
      await store.create(params(fork, { maxAgeSeconds: 3600, maxBytes: 10_000 }, { fork: { sourcePath: src, offset: null, subOffset: 0 } }));
      await runner(db).pass();
      const f = visible(await store.find(fork));
      expect(f.earliest).toBe(0);
      expect(await readFrom(store, fork, 0)).toBe("0".repeat(100) + "1".repeat(100) + "2".repeat(100));
    });

    test("operator rules by glob; the stricter of rule and stream wins", async () => {
      const rules = new RetentionRules([{ match: "logs/**", maxBytes: 200 }]);
      const ruled = "/v1/stream/logs/app/" + n++;
      const own = "/v1/stream/logs/own/" + n++;
      const other = uniq("other");
      await store.create(params(ruled));
      await store.create(params(own, { maxBytes: 100 }));
      await store.create(params(other));
      for (const p of [ruled, own, other]) await fill(store, p, 4);
      await runner(db, rules).pass();
      expect(visible(await store.find(ruled)).earliest).toBe(200);
      expect(visible(await store.find(own)).earliest).toBe(300);
      expect(visible(await store.find(other)).earliest).toBe(0);
      expect(visible(await store.find(other)).retained).toBe(false);
    });

    test("two passes at once (two instances) never remove a row twice", async () => {
      const paths = Array.from({ length: 6 }, () => uniq("pair"));
      for (const p of paths) {
        await store.create(params(p, { maxBytes: 100 }));
        await fill(store, p, 8);
      }
      const [a, b] = await Promise.all([runner(db).pass(), runner(db).pass()]);
      expect(a.rows + b.rows).toBe(6 * 7);
      for (const p of paths) expect(visible(await store.find(p)).earliest).toBe(700);
    });

    test("a pass that died mid-way is taken over once its lease lapses (restart)", async () => {
      const path = uniq("restart");
      await store.create(params(path, { maxBytes: 100 }));
      await fill(store, path, 3);
      // An instance claims the stream, then dies before doing anything.
      const claimed = await claimDue(db, 1000, 200, await databaseNow(db));
      expect(claimed.map((c) => c.path)).toContain(path);
      expect((await runner(db).pass()).rows).toBe(0);
      await Bun.sleep(300);
      await runner(db).pass();
      expect(visible(await store.find(path)).earliest).toBe(200);
    });

    /** When a pass last visited the stream (its schedule row), as the database's text. */
    const visitedAt = async (path: string) => {
      const s = visible(await store.find(path));
      const rows = await db.rows<{ at: unknown }>(sql`SELECT pass_at::text AS at FROM ds_retention WHERE stream_id = ${s.id}`);
      return rows[0]?.at ?? null;
    };

    test("schedule: a size-limited binary stream is visited only once appends can pass its limit", async () => {
      const path = uniq("sched-size");
      await store.create(params(path, { maxBytes: 1000 }));
      await fill(store, path, 3);
      await runner(db).pass();
      const first = await visitedAt(path);
      expect(first).not.toBeNull();
      // 400 bytes stored: another 100 cannot pass 1,000, so the stream is not visited.
      await fill(store, path, 1);
      await runner(db).pass();
      expect(await visitedAt(path)).toBe(first);
      // Another 700 can: visited, and the oldest rows go.
      await fill(store, path, 7);
      await runner(db).pass();
      expect(await visitedAt(path)).not.toBe(first);
      expect(visible(await store.find(path)).earliest).toBe(100);
    });

    test("schedule: an age-limited stream is not visited before its oldest row can expire, then is", async () => {
      const path = uniq("sched-age");
      await store.create(params(path, { maxAgeSeconds: 3 }));
      await fill(store, path, 2);
      await runner(db).pass();
      const first = await visitedAt(path);
      expect(first).not.toBeNull();
      // Young rows and appends: nothing can expire before the first row is 3 s old.
      await fill(store, path, 1);
      await runner(db).pass();
      expect(await visitedAt(path)).toBe(first);
      expect(visible(await store.find(path)).earliest).toBe(0);
      await Bun.sleep(3_200);
      await runner(db).pass();
      expect(await visitedAt(path)).not.toBe(first);
      expect(visible(await store.find(path)).earliest).toBe(300);
    });

    test("schedule: a stream nothing was appended to is not visited; appends make a compacted one due", async () => {
      const path = uniq("sched-compact");
      await store.create(params(path, { compaction: "state" }, { contentType: "application/json", isJson: true }));
      const change = (key: string, v: number) => JSON.stringify([{ type: "t", key, value: v, headers: { operation: "upsert" } }]);
      const put = (body: string) =>
        store.append({ path, contentType: "application/json", body: enc(body), messages: jsonMessages([enc(body.slice(1, -1))]), close: false, streamSeq: null });
      await put(change("a", 1));
      await runner(db).pass();
      const first = await visitedAt(path);
      expect(first).not.toBeNull();
      await runner(db).pass();
      expect(await visitedAt(path)).toBe(first);
      await put(change("a", 2));
      const r = await runner(db).pass();
      expect(await visitedAt(path)).not.toBe(first);
      expect(r.rows).toBeGreaterThanOrEqual(1);
      expect(visible(await store.find(path)).tail).toBe(2);
    });

    test("schedule: a visit is not repeated before the interval has passed", async () => {
      const path = uniq("sched-pace");
      await store.create(params(path, { maxBytes: 100 }));
      await fill(store, path, 2);
      const paced = runner(db, undefined, { intervalMs: 60_000 });
      await paced.pass();
      const first = await visitedAt(path);
      await fill(store, path, 2);
      await paced.pass();
      expect(await visitedAt(path)).toBe(first);
      expect(visible(await store.find(path)).earliest).toBe(100);
    });

    if (backend.name === "postgres") {
      test("a pass never waits for an append holding the stream row: it moves on and comes back", async () => {
        const path = uniq("busy");
        await store.create(params(path, { maxBytes: 100 }));
        await fill(store, path, 4);
        const s = visible(await store.find(path));
        // A writer holds the stream row (as an append group does while it commits).
        let release!: () => void;
        const released = new Promise<void>((r) => (release = r));
        let held!: () => void;
        const holding = new Promise<void>((r) => (held = r));
        const writer = db.tx(async (q) => {
          await q.rows(sql`SELECT id FROM ds_streams WHERE id = ${s.id} FOR NO KEY UPDATE`);
          held();
          await released;
        });
        await holding;
        const started = performance.now();
        const busy = await runner(db).pass();
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(busy.rows).toBe(0);
        expect(visible(await store.find(path)).earliest).toBe(0);
        release();
        await writer;
        // Due again without further appends, and done once the row is free.
        await runner(db).pass();
        expect(visible(await store.find(path)).earliest).toBe(300);
        expect(await readFrom(store, path, 300)).toBe("3".repeat(100));
      });
    }

    test("an idempotent re-create compares the policy like other configuration", async () => {
      const path = uniq("recreate");
      await store.create(params(path, { maxAgeSeconds: 10, maxBytes: 1000 }));
      expect((await store.create(params(path, { maxAgeSeconds: 10, maxBytes: 1000 }))).created).toBe(false);
      await expect(store.create(params(path, { maxAgeSeconds: 11, maxBytes: 1000 }))).rejects.toBeInstanceOf(Conflict);
      await expect(store.create(params(path))).rejects.toBeInstanceOf(Conflict);
    });
  });
}
