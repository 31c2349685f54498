// Leases as PROTOCOL 7.3 says them (issue 26.1), across instances: 3 server processes on one
// Postgres schema (Bun, Deno, Bun). Each subscription is created on one instance, its
// streams are appended to through another (whose deliverer then sends the webhook or writes
// the wake event), and callbacks, acks and claims go through a third.
//
//   - a receiver that hangs: when the lease ends, the hung wake's token is fenced and the
//     next wake (new wake_id, higher generation) goes out while the hung request is open;
//   - a receiver that answers `{done: true}` after its lease: the answer acks nothing, and
//     the next wake follows;
//   - a receiver that answers at once and calls back: valid callbacks extend the lease past
//     its first end; a callback after the lease moved on is fenced, and the next wake follows;
//   - pull-wake: a lease that lapses writes the next wake event then, not at the next tick.
// Never two open sends of one generation, in any of them. Needs DATABASE_URL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { dropSchema } from "../support/backends.ts";
import { until } from "../support/poll.ts";
import { type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { type Delivery, type Receiver, startReceiver } from "./receiver.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
if (!DATABASE_URL) console.warn("test/subscriptions/leases.test.ts: SKIPPED — set DATABASE_URL to run it against real Postgres");

const SCHEMA = `leases_${process.pid}_${Date.now().toString(36)}`;
const LEASE_MS = 2_000;
// WEBHOOK_TIMEOUT_MS at its default (10 s) and the tick at its slowest: neither may be what
// ends a lease.
const ENV = {
  WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", WEBHOOK_TIMEOUT_MS: "10000", SUBSCRIPTION_TICK_MS: "1000", SUBSCRIPTION_BACKSTOP_MS: "15000",
  // No pacing: wakes go out as soon as the rules allow.
  SUBSCRIPTION_WAKE_INTERVAL_MS: "0",
};
const HANG_MS = 12_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const offset = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;

describe.skipIf(!DATABASE_URL)("leases across instances (PROTOCOL 7.3)", () => {
  let creator: SpawnedServer; // Bun: subscriptions are created here
  let appender: SpawnedServer; // Deno: appends here, so this one delivers
  let caller: SpawnedServer; // Bun: callbacks, acks and claims
  let hook: Receiver;
  let db: postgres.Sql;

  const call = (at: SpawnedServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${at.url}/v1/stream/${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const callback = (d: Delivery, body: Record<string, unknown>, token = d.body.callback_token) =>
    fetch(d.body.callback_url.replace(/^http:\/\/[^/]+/, caller.url), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ wake_id: d.body.wake_id, generation: d.body.generation, ...body }),
    });
  const ofSub = (id: string) => hook.deliveries.filter((d) => d.body.subscription_id === id);
  const nextOf = (id: string, after: number, ms = 15_000) =>
    until(() => ofSub(id).find((d) => d.body.generation > after), ms, `a wake of ${id} after generation ${after}`);
  /** Sends of one generation never overlap (closedAt unset: still open). */
  const overlapping = (id: string) => {
    const ds = ofSub(id);
    return ds.filter((a, i) => ds.some((b, j) => j > i && a.body.generation === b.body.generation && b.at < (a.closedAt ?? Infinity)));
  };
  const webhook = async (id: string, answer: (d: Delivery, n: number) => ReturnType<Receiver["answer"]>) => {
    let n = 0;
    const prev = hook.answer;
    hook.answer = (d) => (d.body.subscription_id === id ? answer(d, n++) : prev(d));
    // localhost, not 127.0.0.1: the deliverer resolves the name and connects to what it checked.
    const res = await call(creator, "PUT", `__ds/subscriptions/${id}`, { type: "webhook", streams: [`${id}/a`], webhook: { url: hook.url.replace("127.0.0.1", "localhost") }, lease_ttl_ms: LEASE_MS });
    expect(res.status).toBe(201);
    expect((await call(appender, "PUT", `${id}/a`, [1])).status).toBe(201);
    return until(() => ofSub(id)[0], 15_000, `the first wake of ${id}`);
  };

  beforeAll(async () => {
    const spawn = (runtime: "bun" | "deno") => spawnServer({ runtime, databaseUrl: DATABASE_URL, schema: SCHEMA, env: ENV, quiet: true });
    [creator, appender, caller] = await Promise.all([spawn("bun"), spawn("deno"), spawn("bun")]);
    hook = await startReceiver();
    db = postgres(DATABASE_URL, { max: 2, onnotice: () => {}, connection: { search_path: SCHEMA } });
  }, 120_000);
  afterAll(async () => {
    await Promise.all([creator, appender, caller].map((i) => i?.stop()));
    await hook?.close();
    await db?.end();
    await dropSchema(SCHEMA);
  });

  test("a receiver that hangs: at the lease's end its token is fenced and the next wake goes out while it still hangs", async () => {
    const first = await webhook("hang", (_d, n) => (n === 0 ? { delayMs: HANG_MS } : {}));
    const second = await nextOf("hang", first.body.generation);
    expect(second.body.wake_id).not.toBe(first.body.wake_id);
    // Sent because the lease ended, not because the send timed out (WEBHOOK_TIMEOUT_MS, 10 s).
    expect(second.at - first.at).toBeLessThan(HANG_MS / 2);
    expect(second.body.streams[0]).toMatchObject({ acked_offset: offset(0), tail_offset: offset(1) });
    // The hung wake's token no longer acks; the wake that replaced it does.
    const stale = await callback(first, { acks: [{ stream: "hang/a", offset: offset(1) }], done: true });
    expect(stale.status).toBe(409);
    expect((await stale.json()).error.code).toBe("FENCED");
    const fresh = await callback(second, { acks: [{ stream: "hang/a", offset: offset(1) }], done: true });
    expect([fresh.status, await fresh.json()]).toEqual([200, { ok: true, next_wake: false }]);
    expect(overlapping("hang")).toEqual([]);
  }, 60_000);

  test("a receiver that answers done after its lease: the answer acks nothing and the next wake follows", async () => {
    const first = await webhook("late", (_d, n) => (n === 0 ? { delayMs: LEASE_MS + 1_000, body: { done: true } } : { body: { done: true } }));
    const second = await nextOf("late", first.body.generation);
    expect(second.body.wake_id).not.toBe(first.body.wake_id);
    // The late answer did not move the cursor: the next wake still has the message pending.
    expect(second.body.streams[0]).toMatchObject({ acked_offset: offset(0), has_pending: true });
    await until(async () => {
      const [r] = await db`SELECT acked_pos::int AS acked FROM ds_subscription_links WHERE subscription_id = 'late'`;
      return r.acked === 1 ? true : undefined;
    }, 10_000, "the second wake's done to ack");
    expect(overlapping("late")).toEqual([]);
  }, 60_000);

  test("callbacks extend the lease; one after the lease moved on is fenced, and the next wake follows", async () => {
    const first = await webhook("moved", () => ({}));
    // Two heartbeats carry the wake past its first lease end (valid callbacks extend it).
    for (let i = 0; i < 2; i++) {
      await sleep(LEASE_MS * 0.6);
      const beat = await callback(first, { acks: [] });
      expect([beat.status, await beat.json()]).toEqual([200, { ok: true, next_wake: false }]);
    }
    expect(ofSub("moved").length).toBe(1);
    // Then silence: the lease ends, the wake moves on, and the callback is too late.
    const second = await nextOf("moved", first.body.generation);
    const late = await callback(first, { acks: [{ stream: "moved/a", offset: offset(1) }], done: true });
    expect(late.status).toBe(409);
    expect((await late.json()).error.code).toBe("FENCED");
    const [r] = await db`SELECT acked_pos::int AS acked FROM ds_subscription_links WHERE subscription_id = 'moved'`;
    expect(r.acked).toBe(0);
    const done = await callback(second, { acks: [{ stream: "moved/a", offset: offset(1) }], done: true });
    expect(done.status).toBe(200);
    expect(overlapping("moved")).toEqual([]);
  }, 60_000);

  test("pull-wake: a lease that lapses with work pending writes the next wake event then, not at the next tick", async () => {
    expect((await call(creator, "PUT", "wake/leases", [])).status).toBe(201);
    expect((await call(creator, "PUT", "__ds/subscriptions/pw", { type: "pull-wake", streams: ["pw/a"], wake_stream: "wake/leases", lease_ttl_ms: 1_000 })).status).toBe(201);
    expect((await call(appender, "PUT", "pw/a", [1])).status).toBe(201);
    const events = async () => (await (await call(caller, "GET", "wake/leases?offset=-1")).json()) as { generation: number; ts: number }[];
    await until(async () => ((await events()).length > 0 ? true : undefined), 10_000, "the first wake event");
    const lateness: number[] = [];
    // Claims through each instance in turn (Deno's included): whichever took the lease ends it.
    for (const at of [caller, appender, creator]) {
      const c = await (await call(at, "POST", "__ds/subscriptions/pw/claim", { worker: "silent" })).json();
      expect(c.generation).toBeGreaterThan(0);
      const [{ until_ms }] = await db`SELECT (extract(epoch FROM lease_until) * 1000)::float8 AS until_ms FROM ds_subscriptions WHERE id = 'pw'`;
      const ev = await until(async () => (await events()).find((e) => e.generation > c.generation), 10_000, "the wake event after the lease");
      lateness.push(Math.round(ev.ts - until_ms));
      const stale = await call(caller, "POST", "__ds/subscriptions/pw/ack", { wake_id: c.wake_id, generation: c.generation, done: true }, { authorization: `Bearer ${c.token}` });
      expect((await stale.json()).error.code).toBe("FENCED");
    }
    console.log(`pull-wake: next wake event written ${lateness.join(", ")} ms after each lease's end (tick: 1000 ms)`);
    // At the lease's end, give or take scheduling; the tick alone would leave up to 1,000 ms.
    for (const ms of lateness) expect(ms).toBeLessThan(400);
  }, 60_000);
});
