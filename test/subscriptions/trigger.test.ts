// The per-append trigger check (src/subscriptions/trigger.ts): with one subscription
// following 10,000 streams and 100 glob subscriptions, appends to streams nobody follows
// issue no query; appends to followed streams go on as one batch of keys, one wake
// statement; an append whose every follower is busy (busy.ts) goes on not at all. Time is
// a manual clock: no sleeps, and no wall-clock assertion (timings belong in bench/).
import { expect, test } from "bun:test";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { SubscriptionStore } from "../../src/store/subscriptions/index.ts";
import { BusyLedger, WAIT_HOLD_MS } from "../../src/subscriptions/busy.ts";
import { WakeTrigger } from "../../src/subscriptions/trigger.ts";
import { globRegexSource } from "../../src/protocol/glob.ts";
import { openMigratedPglite } from "../support/backends.ts";
import { countQueries } from "../support/count-queries.ts";
import { ManualClock } from "../support/manual-clock.ts";

const failed = (what: string, err: unknown) => {
  throw new Error(`${what}: ${err}`);
};
const limits = { prefix: "test", limit: 0, perHost: 8, openByHost: new Map<string, number>(), timeoutMs: 55_000, marginMs: 5_000 };

test("appends to unfollowed streams cost no query, however many streams others follow", async () => {
  const db: Db = await openMigratedPglite();
  try {
    await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, webhook_url, lease_ttl_ms, config_hash, base_url)
      VALUES ('big', 1, 'webhook', 'https://h.example/x', 30000, 'h', 'http://x')`);
    await db.rows(sql`INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit)
      SELECT 'big', '/v1/stream/followed/' || i, true FROM generate_series(1, 10000) AS i`);
    for (let g = 0; g < 100; g++) {
      const pattern = `tenant-${g}/**`;
      await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, pattern, pattern_regex, webhook_url, lease_ttl_ms, config_hash, base_url)
        VALUES (${`glob-${g}`}, 1, 'webhook', ${pattern}, ${globRegexSource(pattern)}, 'https://h.example/x', 30000, 'h', 'http://x')`);
    }
    const store = new SubscriptionStore(db, 0);
    const batches: string[][] = [];
    const trigger = new WakeTrigger(store, new BusyLedger(), async (keys) => {
      batches.push(keys);
      await store.wakeAndClaim(keys, limits);
    }, failed);
    await trigger.reload();
    const counter = countQueries(db, { statements: true });

    for (let i = 0; i < 10_000; i++) trigger.appended(`/v1/stream/other/${i}/events`);
    await trigger.idle();
    // The claim is structural, not a timing: not one query for 10,000 unfollowed appends (a
    // query each would be the regression); bench/ measures what the check costs.
    expect(counter.queries).toBe(0);
    expect(batches).toEqual([]);

    expect(trigger.follows("/v1/stream/followed/77")).toBe(true);
    expect(trigger.follows("/v1/stream/tenant-42/a/b")).toBe(true);
    trigger.appended("/v1/stream/followed/77");
    trigger.appended("/v1/stream/tenant-9/x");
    await trigger.idle();
    expect(batches).toEqual([["/v1/stream/followed/77", "/v1/stream/tenant-9/x"]]);
    expect(counter.queries).toBe(1); // both streams in one wake statement
  } finally {
    await db.close();
  }
}, 60_000);

test("appends to a subscription that cannot be idle yet (delivering, or its wake not due) send no wake statement", async () => {
  const db: Db = await openMigratedPglite();
  try {
    await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, pattern, pattern_regex, webhook_url, lease_ttl_ms, config_hash, base_url)
      VALUES ('g', 1, 'webhook', 'g/*', ${globRegexSource("g/*")}, 'https://h.example/x', 30000, 'h', 'http://x')`);
    const clock = new ManualClock();
    const busy = new BusyLedger(clock);
    let batches = 0;
    const trigger = new WakeTrigger(new SubscriptionStore(db, 1_000), busy, async () => void batches++, failed);
    await trigger.reload();
    const appendAndSettle = async () => {
      trigger.appended("/v1/stream/g/a");
      await trigger.idle();
    };

    busy.delivering("g");
    await appendAndSettle();
    expect(batches).toBe(0);
    busy.delivered("g");
    await appendAndSettle();
    expect(batches).toBe(1);

    // A pull-wake worker may claim a wake before it is due: no skipping for it.
    busy.woke({ id: "g", type: "pull-wake", dueInMs: 200 }, clock.now());
    await appendAndSettle();
    expect(batches).toBe(2);
    // A webhook wake due in 200 ms: nobody can end it before then.
    busy.woke({ id: "g", type: "webhook", dueInMs: 200 }, clock.now());
    await appendAndSettle();
    expect(batches).toBe(2);
    clock.advance(190);
    await appendAndSettle();
    expect(batches).toBe(2);
    // Due (less the margin for the two clocks): the wake waits for this instance to claim it,
    // and an append is held back rather than sent to find it still waiting...
    clock.advance(10);
    await appendAndSettle();
    expect(batches).toBe(2);
    // ... then sent, late, if no claim here came (another instance may have taken the wake).
    clock.advance(WAIT_HOLD_MS + 1);
    await trigger.idle();
    expect(batches).toBe(3);
    // Claimed here: what was held needs nothing more (the delivery's snapshot and its end cover it).
    busy.woke({ id: "g", type: "webhook", dueInMs: 0 }, clock.now());
    await appendAndSettle();
    expect(batches).toBe(3);
    busy.delivering("g");
    await trigger.idle();
    expect(batches).toBe(3);
    clock.advance(2 * WAIT_HOLD_MS);
    await trigger.idle();
    expect(batches).toBe(3);
    busy.delivered("g");
    await appendAndSettle();
    expect(batches).toBe(4);

    // A reload (subscriptions changed) forgets due times: the id may name a new subscription.
    busy.woke({ id: "g", type: "webhook", dueInMs: 10_000 }, clock.now());
    await appendAndSettle();
    expect(batches).toBe(4);
    await trigger.reload();
    await appendAndSettle();
    expect(batches).toBe(5);
    // ... but not a delivery in progress here.
    busy.delivering("g");
    await trigger.reload();
    await appendAndSettle();
    expect(batches).toBe(5);
  } finally {
    await db.close();
  }
}, 60_000);
