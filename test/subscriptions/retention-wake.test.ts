// A subscription whose acked offset falls behind the stream's earliest retained offset
// (issue 28, notes/retention.md): the next wake still starts at the committed cursor but
// says where the data now begins, so the worker resumes there instead of meeting a 410.
import { describe, expect, test } from "bun:test";
import { NO_POLICY } from "../../src/protocol/retention.ts";
import { formatOffset } from "../../src/protocol/offsets.ts";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import { SubscriptionStore } from "../../src/store/subscriptions/index.ts";
import { streamEntries } from "../../src/protocol/wake-fence.ts";
import { RetentionRunner } from "../../src/retention/runner.ts";
import { RetentionRules } from "../../src/retention/rules.ts";
import { backends } from "../support/backends.ts";
import { appendRequest, createParams, useStore } from "../support/store-fixture.ts";

for (const backend of backends) {
  describe(`wakes behind the earliest offset on ${backend.name}`, () => {
    let db: Db;
    let store: Store;
    useStore(backend, {}, (opened) => ({ db, store } = opened));

    test("the wake carries earliest_offset and behind_earliest; a cursor within the data carries neither", async () => {
      const behind = "/v1/stream/ret/behind";
      const within = "/v1/stream/ret/within";
      for (const path of [behind, within]) {
        await store.create(createParams(path, { retention: { ...NO_POLICY, maxBytes: 100 } }));
        for (let i = 0; i < 4; i++) await store.append(appendRequest(path, "x".repeat(100)));
      }
      await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, webhook_url, lease_ttl_ms, config_hash, base_url)
        VALUES ('ret', 1, 'webhook', 'https://h.example/x', 30000, 'h', 'http://x')`);
      await db.rows(sql`INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit, acked_pos)
        VALUES ('ret', ${behind}, true, 100), ('ret', ${within}, true, 350)`);
      await new RetentionRunner(db, new RetentionRules([]), { intervalMs: 0, deleteGraceMs: 0 }).pass();
      const subs = new SubscriptionStore(db, 0);
      expect(await subs.wakeSubscription("ret")).toMatchObject({ id: "ret" });
      const [d] = await subs.claimDue({ prefix: "test", limit: 10, perHost: 8, openByHost: new Map(), timeoutMs: 55_000, marginMs: 5_000 });
      const entries = Object.fromEntries(streamEntries(d.links).map((e) => [e.path, e]));
      expect(entries["ret/behind"]).toMatchObject({
        acked_offset: formatOffset(100),
        tail_offset: formatOffset(400),
        has_pending: true,
        earliest_offset: formatOffset(300),
        behind_earliest: true,
      });
      expect(entries["ret/within"].acked_offset).toBe(formatOffset(350));
      expect("behind_earliest" in entries["ret/within"]).toBe(false);
      expect("earliest_offset" in entries["ret/within"]).toBe(false);
    });
  });
}
