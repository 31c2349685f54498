// The wake after an append starts and claims in one statement (store/subscriptions/
// claims.ts wakeAndClaim, issue 30.3): a wake due now comes back claimed, as the deliverer's
// claim would have it a moment later; one not due yet (pacing), or beyond the instance's
// room or a host's share, comes back only woken, for claimDue when due. Both backends.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Db, sql } from "../../src/store/driver/db.ts";
import { wakeAndClaim } from "../../src/store/subscriptions/claims.ts";
import { type ClaimLimits, SubscriptionStore } from "../../src/store/subscriptions/index.ts";
import { checkFence } from "../../src/protocol/wake-fence.ts";
import { backends } from "../support/backends.ts";

const limits = (o: Partial<ClaimLimits> = {}): ClaimLimits => ({
  prefix: "i1:1", limit: 10, perHost: 8, openByHost: new Map(), timeoutMs: 55_000, marginMs: 5_000, ...o,
});

async function subscription(db: Db, id: string, key: string, host = "h.example"): Promise<void> {
  await db.rows(sql`INSERT INTO ds_subscriptions (id, incarnation, type, webhook_url, lease_ttl_ms, config_hash, base_url)
    VALUES (${id}, 1, 'webhook', ${`https://${host}/x`}, 30000, 'h', 'http://x')`);
  await db.rows(sql`INSERT INTO ds_subscription_links (subscription_id, stream_path, explicit) VALUES (${id}, ${key}, true)`);
}

const stream = (db: Db, key: string, tail: number) =>
  db.rows(sql`INSERT INTO ds_streams (path, content_type, is_json, tail) VALUES (${key}, 'text/plain', false, ${tail})`);

for (const backend of backends) {
  describe(`wake and claim in one statement on ${backend.name}`, () => {
    let db: Db;
    beforeAll(async () => {
      db = await backend.open();
    });
    afterAll(async () => {
      await db.close();
    });

    test("a wake due now comes back claimed, with its snapshot, lease and claim set, and finishes like any claim", async () => {
      await stream(db, "/v1/stream/wc/a", 10);
      await subscription(db, "wc-a", "/v1/stream/wc/a");
      const subs = new SubscriptionStore(db, 0);
      const { woken, claimed } = await subs.wakeAndClaim(["/v1/stream/wc/a"], limits());
      expect(woken).toEqual([]);
      expect(claimed).toHaveLength(1);
      const d = claimed[0];
      expect(d).toMatchObject({ id: "wc-a", type: "webhook", host: "h.example", generation: 1, attempt: 0, claim: "i1:1:wc-a:1:1" });
      expect(d.links).toEqual([{ key: "/v1/stream/wc/a", explicit: true, ackedPos: 0, tail: 10, earliest: 0 }]);
      expect(d.leaseMs).toBeGreaterThan(29_000);
      const [row] = await db.rows<Record<string, unknown>>(sql`
        SELECT wake_id, wake_snapshot::text AS snap, delivering_until > clock_timestamp() AS sending, lease_until IS NOT NULL AS leased
        FROM ds_subscriptions WHERE id = 'wc-a'`);
      expect(row).toMatchObject({ wake_id: d.wakeId, sending: true, leased: true });
      expect(JSON.parse(String(row.snap))).toEqual({ "/v1/stream/wc/a": 10 });
      // Claimed already: the deliverer's own claim does not take it again.
      expect(await subs.claimDue(limits())).toEqual([]);
      expect(await subs.deliveryFinished(d)).toEqual({ ended: true });
      const [link] = await db.rows<{ acked: string }>(sql`SELECT acked_pos::text AS acked FROM ds_subscription_links WHERE subscription_id = 'wc-a'`);
      expect(link.acked).toBe("10");
    });

    test("no room, or a host at its share: woken only, and claimed later by claimDue", async () => {
      for (const s of ["b1", "b2", "b3"]) {
        await stream(db, `/v1/stream/wc/${s}`, 5);
        await subscription(db, `wc-${s}`, `/v1/stream/wc/${s}`, s === "b3" ? "other.example" : "busy.example");
      }
      const subs = new SubscriptionStore(db, 0);
      // busy.example has one send open and a share of 2: one more of it, and other.example's.
      const r = await subs.wakeAndClaim(["/v1/stream/wc/b1", "/v1/stream/wc/b2", "/v1/stream/wc/b3"], limits({ perHost: 2, openByHost: new Map([["busy.example", 1]]) }));
      expect(r.claimed.map((d) => d.id).sort()).toEqual(["wc-b1", "wc-b3"]);
      expect(r.woken).toEqual([{ id: "wc-b2", type: "webhook", dueInMs: 0 }]);
      const later = await subs.claimDue(limits());
      expect(later.map((d) => d.id)).toEqual(["wc-b2"]);

      await stream(db, "/v1/stream/wc/c", 5);
      await subscription(db, "wc-c", "/v1/stream/wc/c");
      const none = await subs.wakeAndClaim(["/v1/stream/wc/c"], limits({ limit: 0 }));
      expect(none).toEqual({ woken: [{ id: "wc-c", type: "webhook", dueInMs: 0 }], claimed: [] });
    });

    test("a paced wake not due yet is woken, not claimed; a busy subscription is neither", async () => {
      await stream(db, "/v1/stream/wc/p", 5);
      await subscription(db, "wc-p", "/v1/stream/wc/p");
      await db.rows(sql`UPDATE ds_subscriptions SET next_wake_at = clock_timestamp() + interval '10 seconds' WHERE id = 'wc-p'`);
      const subs = new SubscriptionStore(db, 1_000);
      const r = await subs.wakeAndClaim(["/v1/stream/wc/p"], limits());
      expect(r.claimed).toEqual([]);
      expect(r.woken).toHaveLength(1);
      expect(r.woken[0].dueInMs).toBeGreaterThan(8_000);
      // Its wake is in flight: another append starts nothing.
      expect(await subs.wakeAndClaim(["/v1/stream/wc/p"], limits())).toEqual({ woken: [], claimed: [] });
    });

    test("a wake lost with its transaction is started again under a new wake_id in the same generation; calls of the lost one are fenced", async () => {
      await stream(db, "/v1/stream/wc/lost", 4);
      await subscription(db, "wc-lost", "/v1/stream/wc/lost");
      // The state after a wake whose commit was lost (a failover to a standby that had not
      // received it, say) is the state before it: roll it back.
      const lost = await db
        .tx(async (q) => {
          const [d] = (await wakeAndClaim(q, ["/v1/stream/wc/lost"], 0, limits())).claimed;
          throw Object.assign(new Error("crash"), { d });
        })
        .catch((e: { d: { generation: number; wakeId: string } }) => e.d);
      const subs = new SubscriptionStore(db, 0);
      const [again] = (await subs.wakeAndClaim(["/v1/stream/wc/lost"], limits())).claimed;
      expect(again.generation).toBe(lost.generation);
      expect(again.wakeId).not.toBe(lost.wakeId);
      const row = { incarnation: 1, type: "webhook", generation: again.generation, wakeId: again.wakeId, holder: null, leaseLapsed: false };
      const call = (wakeId: string) => ({
        id: "wc-lost", type: "webhook" as const, token: { incarnation: 1, generation: lost.generation, wakeId }, generation: lost.generation, wakeId, acks: new Map(), done: true,
      });
      expect(() => checkFence(row, call(lost.wakeId))).toThrow("wake_id does not match");
      expect(() => checkFence(row, call(again.wakeId))).not.toThrow();
    });
  });
}
