// The per-append trigger check: with one subscription following 10,000 streams and 100 glob
// subscriptions, appends to streams nobody follows issue no query; an append to a followed
// stream runs one wake statement. (No wall-clock assertion: timings belong in bench/.)
import { expect, test } from "bun:test";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { openMigratedPglite } from "../support/backends.ts";
import { migrate } from "../../src/store/migrate.ts";
import { WakeTrigger } from "../../src/subscriptions/trigger.ts";
import { globRegexSource } from "../../src/subscriptions/glob.ts";
import { countQueries } from "../support/count-queries.ts";


test("appends to unfollowed streams cost no query, however many streams others follow", async () => {
  const db: Db = await openMigratedPglite();
  try {
    await migrate(db);
    await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, webhook_url, lease_ttl_ms, config_hash, base_url)
      VALUES ('big', 1, 'webhook', 'https://h.example/x', 30000, 'h', 'http://x')`);
    await db.rows(sql`INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit)
      SELECT 'big', '/v1/stream/followed/' || i, true FROM generate_series(1, 10000) AS i`);
    for (let g = 0; g < 100; g++) {
      const pattern = `tenant-${g}/**`;
      await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, pattern, pattern_regex, webhook_url, lease_ttl_ms, config_hash, base_url)
        VALUES (${`glob-${g}`}, 1, 'webhook', ${pattern}, ${globRegexSource(pattern)}, 'https://h.example/x', 30000, 'h', 'http://x')`);
    }
    const trigger = new WakeTrigger(db);
    await trigger.reload();
    const counter = countQueries(db);

    for (let i = 0; i < 10_000; i++) trigger.appended(`/v1/stream/other/${i}/events`);
    await new Promise((r) => setTimeout(r, 20));
    await trigger.idle();
    // The claim is structural, not a timing: not one query for 10,000 unfollowed appends (a
    // query each would be the regression); bench/ measures what the check costs.
    expect(counter.queries).toBe(0);

    expect(trigger.follows("/v1/stream/followed/77")).toBe(true);
    expect(trigger.follows("/v1/stream/tenant-42/a/b")).toBe(true);
    trigger.appended("/v1/stream/followed/77");
    trigger.appended("/v1/stream/tenant-9/x");
    await new Promise((r) => setTimeout(r, 20));
    await trigger.idle();
    expect(counter.queries).toBe(1); // both streams in one wake statement
  } finally {
    await db.close();
  }
}, 60_000);

test("appends to a subscription that cannot be idle yet (delivering, or its wake not due) send no wake statement", async () => {
  const db: Db = await openMigratedPglite();
  try {
    await migrate(db);
    await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, pattern, pattern_regex, webhook_url, lease_ttl_ms, config_hash, base_url)
      VALUES ('g', 1, 'webhook', 'g/*', ${globRegexSource("g/*")}, 'https://h.example/x', 30000, 'h', 'http://x')`);
    const trigger = new WakeTrigger(db, 1_000);
    await trigger.reload();
    const counter = countQueries(db);
    const appendAndSettle = async () => {
      trigger.appended("/v1/stream/g/a");
      await new Promise((r) => setTimeout(r, 10));
      await trigger.idle();
    };

    trigger.delivering("g");
    await appendAndSettle();
    expect(counter.queries).toBe(0);
    trigger.delivered("g");
    await appendAndSettle();
    expect(counter.queries).toBe(1);

    // A pull-wake worker may claim a wake before it is due: no skipping for it.
    trigger.woke({ id: "g", type: "pull-wake", dueInMs: 200 }, performance.now());
    await appendAndSettle();
    expect(counter.queries).toBe(2);
    // A webhook wake due in 200 ms: nobody can end it before then.
    trigger.woke({ id: "g", type: "webhook", dueInMs: 200 }, performance.now());
    await appendAndSettle();
    expect(counter.queries).toBe(2);
    await new Promise((r) => setTimeout(r, 220));
    await appendAndSettle();
    expect(counter.queries).toBe(3);

    // A reload (subscriptions changed) forgets due times: the id may name a new subscription.
    trigger.woke({ id: "g", type: "webhook", dueInMs: 10_000 }, performance.now());
    await trigger.reload();
    await appendAndSettle();
    expect(counter.queries).toBe(6); // the reload's two queries, then the wake statement
  } finally {
    await db.close();
  }
}, 60_000);
