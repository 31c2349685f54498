// The race that every end of a wake must close (Deliverer.afterEnd): an append that commits
// while the statement ending a wake runs is invisible to that statement, and the append's
// own trigger, on whichever instance, still sees the wake in flight and leaves it. Without a
// second look after the end commits, the subscription would sit idle with data pending
// until the backstop. Postgres only (PGlite has one connection: nothing interleaves).
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { SubscriptionStore } from "../../src/store/subscriptions/index.ts";
import { backends } from "../support/backends.ts";
import { until } from "../support/poll.ts";

const pg = backends.find((b) => b.name === "postgres");
const KEY = "/v1/stream/race/a";
let db: Db;
const limits = { prefix: "test", limit: 10, perHost: 8, openByHost: new Map(), timeoutMs: 55_000, marginMs: 5_000 };

beforeAll(async () => {
  if (pg) db = await pg.open();
});
afterAll(async () => {
  await db?.close();
});

test.skipIf(!pg)("an append committed while a wake ends is found by the look after the end", async () => {
  await db.rows(sql`INSERT INTO ds_streams (path, content_type, is_json, tail) VALUES (${KEY}, 'text/plain', false, 10)`);
  await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, webhook_url, lease_ttl_ms, config_hash, base_url)
    VALUES ('race', 1, 'webhook', 'https://h.example/x', 30000, 'h', 'http://x')`);
  await db.rows(sql`INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit) VALUES ('race', ${KEY}, true)`);
  const subs = new SubscriptionStore(db, 0);
  expect(await subs.wakeSubscription("race")).toMatchObject({ id: "race", dueInMs: 0 });
  const [d] = await subs.claimDue(limits);
  expect(d.links).toEqual([{ key: KEY, explicit: true, ackedPos: 0, tail: 10, earliest: 0 }]);

  // Hold the row so the ending statement starts (taking its snapshot) and then waits.
  const other = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {}, connection: { search_path: db.schema } });
  try {
    const holder = await other.reserve();
    await holder`BEGIN`;
    await holder`SELECT 1 FROM ds_subscriptions WHERE id = 'race' FOR UPDATE`;
    const ending = subs.deliveryFinished(d);
    await until(async () => {
      const [w] = await holder`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%WITH mine AS%'`;
      return w.n > 0 ? true : undefined;
    }, 5_000, "the ending statement to wait for the row");

    // The append commits now, and its trigger finds the wake still in flight.
    await db.rows(sql`UPDATE ds_streams SET tail = 20 WHERE path = ${KEY}`);
    expect(await subs.wakeAndClaim([KEY], limits)).toEqual({ woken: [], claimed: [] });

    await holder`COMMIT`;
    holder.release();
    // The end acked the snapshot (10) and, not seeing the append, left the subscription idle.
    expect(await ending).toEqual({ ended: true });
    const [row] = await db.rows<{ wake_id: string | null; acked: string }>(sql`
      SELECT s.wake_id, l.acked_pos::text AS acked FROM ds_subscriptions s JOIN ds_subscription_links l ON l.subscription_id = s.id WHERE s.id = 'race'`);
    expect(row).toEqual({ wake_id: null, acked: "10" });

    // The look after the end (a new snapshot) starts the wake the append needs.
    expect(await subs.wakeSubscription("race")).toMatchObject({ id: "race" });
  } finally {
    await other.end();
  }
}, 30_000);
