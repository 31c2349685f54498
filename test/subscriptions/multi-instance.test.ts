// Subscriptions across instances: 3 real server processes on one Postgres schema, a real
// webhook receiver in the test, requests spread round robin over the instances.
//
//   1. load: SUBS subscriptions over STREAMS streams under append load: every subscription
//      ends with nothing pending (every wake delivered and acked), no subscription ever has
//      two deliveries in flight at once, generations rise and cursors only move forward;
//   2. SIGKILL the instance that is delivering a wake: another delivers the same wake once
//      the delivery lease lapses;
//   3. restart every instance: cursors, leases and retry schedules are intact, and the
//      scheduled retry still happens;
//   4. two pull-wake workers claim through different instances at once: exactly one wins.
//
// Scaled down from the 100 subscriptions / 1,000 streams to keep CI short (see
// SUBS, STREAMS, APPENDS). Needs DATABASE_URL; skipped without it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { dropSchema } from "../support/backends.ts";
import { type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { type Delivery, type Receiver, startReceiver } from "./receiver.ts";
import { until as poll } from "../support/poll.ts";

const DATABASE_URL = process.env.DATABASE_URL || "";
if (!DATABASE_URL) console.warn("test/subscriptions/multi-instance.test.ts: SKIPPED — set DATABASE_URL to run it against real Postgres");

const SCHEMA = `subs_${process.pid}_${Date.now().toString(36)}`;
const GROUPS = 10;
const STREAMS = 300; // the issue asks for 1,000
const SUBS = 40; // the issue asks for 100
const APPENDS = 1_500;
const ENV = { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", WEBHOOK_TIMEOUT_MS: "1500", SUBSCRIPTION_TICK_MS: "200", SUBSCRIPTION_BACKSTOP_MS: "2000" };
const DELIVERY_LEASE_MS = 1500 + 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = <T>(probe: () => Promise<T | undefined>, ms: number, what: string) => poll(probe, ms, what, 50);

describe.skipIf(!DATABASE_URL)("subscriptions across instances", () => {
  let instances: SpawnedServer[] = [];
  let hook: Receiver;
  let db: postgres.Sql;
  let rr = 0;
  const next = () => instances[rr++ % instances.length];
  const spawn = () => spawnServer({ databaseUrl: DATABASE_URL, schema: SCHEMA, env: ENV, quiet: true });
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, at = next()) =>
    fetch(`${at.url}/v1/stream/${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  /** Which process holds a subscription's delivery lease right now (claims start with the pid). */
  const deliveringPid = async (id: string) => {
    const [row] = await db`SELECT delivery_claim FROM ds_subscriptions WHERE id = ${id}`;
    return row?.delivery_claim ? Number(String(row.delivery_claim).split("-")[0]) : undefined;
  };

  beforeAll(async () => {
    instances = await Promise.all([spawn(), spawn(), spawn()]);
    hook = await startReceiver();
    db = postgres(DATABASE_URL, { max: 2, onnotice: () => {}, connection: { search_path: SCHEMA } });
    // (Hooks default to 5 s: three start-ups on a busy 2-core machine take longer.)
  }, 120_000);
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await hook?.close();
    await db?.end();
    await dropSchema(SCHEMA);
  });

  test("every wake delivered under load, one delivery per subscription at a time, cursors only forward", async () => {
    const inflight = new Map<string, number>();
    const violations: string[] = [];
    const lastGen = new Map<string, number>();
    const lastAcked = new Map<string, string>();
    hook.answer = async (d: Delivery) => {
      const id = d.body.subscription_id;
      if (!id.startsWith("load-")) return {};
      if ((inflight.get(id) ?? 0) > 0) violations.push(`${id}: two deliveries in flight`);
      inflight.set(id, (inflight.get(id) ?? 0) + 1);
      if (d.body.generation < (lastGen.get(id) ?? 0)) violations.push(`${id}: generation went back`);
      lastGen.set(id, d.body.generation);
      for (const s of d.body.streams) {
        const k = `${id} ${s.path}`;
        if (lastAcked.has(k) && s.acked_offset < lastAcked.get(k)!) violations.push(`${k}: cursor went back`);
        lastAcked.set(k, s.acked_offset);
      }
      await sleep(Math.random() * 20);
      inflight.set(id, inflight.get(id)! - 1);
      // Half finish synchronously; the others ack through the callback, on another instance.
      if (d.body.generation % 2 === 0) return { body: { done: true } };
      setTimeout(() => {
        const acks = d.body.streams.map((s) => ({ stream: s.path, offset: s.tail_offset }));
        fetch(d.body.callback_url.replace(/^http:\/\/[^/]+/, next().url), {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${d.body.callback_token}` },
          body: JSON.stringify({ wake_id: d.body.wake_id, generation: d.body.generation, acks, done: true }),
        }).catch(() => {});
      }, 5);
      return {};
    };
    const streams = Array.from({ length: STREAMS }, (_, i) => `load/g${i % GROUPS}/s${i}`);
    // Half the streams exist before the subscriptions (backfilled), half come later (linked on creation).
    for (const s of streams.slice(0, STREAMS / 2)) expect((await call("PUT", s, [])).status).toBe(201);
    for (let i = 0; i < SUBS; i++) {
      const res = await call("PUT", `__ds/subscriptions/load-${i}`, { type: "webhook", pattern: `load/g${i % GROUPS}/*`, webhook: { url: hook.url }, lease_ttl_ms: 10_000 });
      expect(res.status).toBe(201);
    }
    for (const s of streams.slice(STREAMS / 2)) expect((await call("PUT", s, [])).status).toBe(201);
    let sent = 0;
    const worker = async () => {
      while (sent < APPENDS) {
        sent++;
        const res = await call("POST", streams[Math.floor(Math.random() * STREAMS)], { n: sent });
        expect(res.status).toBe(204);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 16 }, worker));
    const appendMs = Date.now() - started;
    const settled = await until(async () => {
      const [{ pending, inflightWakes }] = await db`
        SELECT (SELECT count(*) FROM ds_subscription_links l JOIN ds_streams st ON st.path = l.stream_path WHERE st.tail > l.acked_pos)::int AS pending,
               (SELECT count(*) FROM ds_subscriptions WHERE wake_id IS NOT NULL AND id LIKE 'load-%')::int AS "inflightWakes"`;
      return pending === 0 && inflightWakes === 0 ? Date.now() : undefined;
    }, 30_000, "every linked stream acked to its tail");
    const [{ links }] = await db`SELECT count(*)::int AS links FROM ds_subscription_links WHERE subscription_id LIKE 'load-%'`;
    const deliveries = hook.deliveries.filter((d) => d.body.subscription_id.startsWith("load-")).length;
    console.log(`${APPENDS} appends in ${appendMs} ms over ${STREAMS} streams, ${SUBS} subscriptions (${links} links): ${deliveries} deliveries, settled ${settled - started - appendMs} ms after the last append`);
    expect(links).toBe((STREAMS / GROUPS) * SUBS);
    expect(violations).toEqual([]);
    expect(deliveries).toBeGreaterThanOrEqual(SUBS);
  }, 90_000);

  test("SIGKILL the delivering instance mid-delivery: another instance delivers the same wake", async () => {
    const seen: { d: Delivery; pid?: number }[] = [];
    hook.answer = async (d) => {
      if (d.body.subscription_id !== "kill-me") return {};
      seen.push({ d, pid: await deliveringPid("kill-me") });
      // The first delivery hangs until its deliverer is gone; the next one finishes.
      return seen.length === 1 ? { delayMs: 20_000 } : { body: { done: true } };
    };
    await call("PUT", "__ds/subscriptions/kill-me", { type: "webhook", streams: ["kill/a"], webhook: { url: hook.url } });
    await call("PUT", "kill/a", [1]);
    await until(async () => (seen.length >= 1 ? true : undefined), 10_000, "first delivery");
    const victim = instances.find((i) => i.proc.pid === seen[0].pid);
    expect(victim).toBeDefined();
    const killedAt = Date.now();
    await victim!.stop("SIGKILL");
    instances = instances.filter((i) => i !== victim);
    await until(async () => (seen.length >= 2 ? true : undefined), DELIVERY_LEASE_MS + 8_000, "redelivery by another instance");
    expect(seen[1].pid).not.toBe(seen[0].pid);
    expect(seen[1].d.body.wake_id).toBe(seen[0].d.body.wake_id);
    expect(seen[1].d.body.generation).toBe(seen[0].d.body.generation);
    expect(seen[1].d.at - killedAt).toBeLessThan(DELIVERY_LEASE_MS + 4_000);
    const [row] = await until(async () => {
      const rows = await db`SELECT l.acked_pos::int AS acked, s.wake_id FROM ds_subscription_links l JOIN ds_subscriptions s ON s.id = l.subscription_id WHERE s.id = 'kill-me'`;
      return rows[0]?.acked === 1 ? rows : undefined;
    }, 5_000, "auto-ack after redelivery");
    expect(row.wake_id).toBeNull();
    instances.push(await spawn());
  }, 60_000);

  test("restart every instance: cursors, leases and retry schedules are intact", async () => {
    let healthy = false;
    // After three failures the next retry is 3.2-4.8 s away: it comes due after the restart.
    hook.answer = (d) => (d.body.subscription_id === "flaky" && !healthy ? { status: 500 } : { body: { done: true } });
    await call("PUT", "__ds/subscriptions/flaky", { type: "webhook", streams: ["restart/a"], webhook: { url: hook.url } });
    await call("PUT", "restart/a", [1, 2]);
    await until(async () => {
      const [r] = await db`SELECT attempt FROM ds_subscriptions WHERE id = 'flaky'`;
      return r?.attempt >= 3 ? true : undefined;
    }, 15_000, "three failed attempts");
    await call("PUT", "wake/restart", []);
    await call("PUT", "__ds/subscriptions/held", { type: "pull-wake", streams: ["restart/b"], wake_stream: "wake/restart", lease_ttl_ms: 600_000 });
    await call("PUT", "restart/b", [1]);
    const claim = await (await call("POST", "__ds/subscriptions/held/claim", { worker: "w1" })).json();
    expect(claim.generation).toBeGreaterThan(0);
    await call("POST", "__ds/subscriptions/held/ack", { wake_id: claim.wake_id, generation: claim.generation, acks: [{ stream: "restart/b", offset: "0000000000000000_0000000000000000" }] }, { authorization: `Bearer ${claim.token}` });
    const state = () => db`
      SELECT s.id, s.incarnation, s.generation, s.wake_id, s.holder, s.lease_until, s.attempt, s.status, s.deliver_at,
             (SELECT json_agg(json_build_array(l.stream_path, l.acked_pos) ORDER BY l.stream_path) FROM ds_subscription_links l WHERE l.subscription_id = s.id) AS links
      FROM ds_subscriptions s ORDER BY s.id`;
    await Promise.all(instances.map((i) => i.stop()));
    const before = await state();
    instances = await Promise.all([spawn(), spawn(), spawn()]);
    const after = await state();
    // The failing subscription's retry was 3.2-4.8 s away at its third failure; when the
    // restart took longer (a loaded machine), the new instances carried it out already, and its
    // row moved on as it should: then every other row is compared.
    const dueAt = before.find((r) => r.id === "flaky")!.deliver_at as Date;
    const [{ due }] = await db`SELECT ${dueAt}::timestamptz <= clock_timestamp() AS due`;
    const settled = (rows: typeof before) => (due ? rows.filter((r) => r.id !== "flaky") : rows);
    if (due) console.log("restart: the flaky subscription's retry came due during the restart; its row is not compared");
    expect(settled(after)).toEqual(settled(before));
    // The lease is still held, by the same worker, and its token still works.
    const busy = await (await call("POST", "__ds/subscriptions/held/claim", { worker: "w2" })).json();
    expect(busy.error).toMatchObject({ code: "ALREADY_CLAIMED", current_holder: "w1" });
    const ack = await call("POST", "__ds/subscriptions/held/ack", { wake_id: claim.wake_id, generation: claim.generation, acks: [{ stream: "restart/b", offset: "0000000000000000_0000000000000001" }], done: true }, { authorization: `Bearer ${claim.token}` });
    expect(await ack.json()).toEqual({ ok: true, next_wake: false });
    // The retry scheduled before the restart is carried out by the new instances.
    healthy = true;
    await until(async () => {
      const [r] = await db`SELECT l.acked_pos::int AS acked FROM ds_subscription_links l WHERE l.subscription_id = 'flaky'`;
      return r?.acked === 2 ? true : undefined;
    }, 20_000, "the retry after the restart");
  }, 90_000);

  test("two pull-wake workers claim through different instances at once: exactly one wins", async () => {
    await call("PUT", "wake/race", []);
    for (let round = 0; round < 8; round++) {
      const id = `race-${round}`;
      await call("PUT", `__ds/subscriptions/${id}`, { type: "pull-wake", streams: [`race/${round}`], wake_stream: "wake/race" });
      await call("PUT", `race/${round}`, [round]);
      const [a, b] = [instances[round % 3], instances[(round + 1) % 3]];
      const results = await Promise.all([
        call("POST", `__ds/subscriptions/${id}/claim`, { worker: "a" }, {}, a),
        call("POST", `__ds/subscriptions/${id}/claim`, { worker: "b" }, {}, b),
      ]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409]);
      const loser = await results.find((r) => r.status === 409)!.json();
      const winner = await results.find((r) => r.status === 200)!.json();
      expect(loser.error.code).toBe("ALREADY_CLAIMED");
      expect(loser.error.generation).toBe(winner.generation);
    }
  }, 60_000);
});
