// The subscription counters on /metrics, driven by the real deliverer of a spawned server:
// all four at 0 before anything is delivered, then moved by a delivery that is acknowledged,
// one that fails and is retried, and a lease that lapses under a receiver that hangs.
import { afterAll, expect, test } from "bun:test";
import { SUBSCRIPTION_METRIC_NAMES } from "../../src/observability/subscriptions.ts";
import { parseMetrics } from "../support/metrics.ts";
import { spawnServer } from "../support/spawn-server.ts";
import { startReceiver } from "../subscriptions/receiver.ts";

const names = SUBSCRIPTION_METRIC_NAMES;
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("the deliverer counts deliveries, failures, retries and lapsed leases on /metrics", async () => {
  expect(Object.values(names)).toEqual([
    "ds_subscription_deliveries_total",
    "ds_subscription_delivery_failures_total",
    "ds_subscription_retries_total",
    "ds_subscription_lease_expiries_total",
  ]);
  const server = await spawnServer({ quiet: true, env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", SUBSCRIPTION_TICK_MS: "100" } });
  cleanup.push(() => server.stop());
  const done = await startReceiver();
  done.answer = () => ({ body: { done: true } });
  const hangs = await startReceiver();
  hangs.answer = () => ({ delayMs: 4_000 });
  cleanup.push(() => done.close(), () => hangs.close());

  const metrics = async () => parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
  const before = await metrics();
  for (const n of Object.values(names)) expect({ n, v: before.get(n) }).toEqual({ n, v: 0 });

  const put = (path: string, body: unknown) =>
    fetch(`${server.url}/v1/stream/${path}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  expect((await put("__ds/subscriptions/ok", { type: "webhook", streams: ["m/ok"], webhook: { url: done.url } })).status).toBe(201);
  // Port 9 (discard) refuses: every attempt fails and is retried after a backoff of about 1 s.
  expect((await put("__ds/subscriptions/dead", { type: "webhook", streams: ["m/dead"], webhook: { url: "http://127.0.0.1:9/x" } })).status).toBe(201);
  expect((await put("__ds/subscriptions/hang", { type: "webhook", streams: ["m/hang"], webhook: { url: hangs.url }, lease_ttl_ms: 1_000 })).status).toBe(201);
  for (const s of ["m/ok", "m/dead", "m/hang"]) expect((await put(s, [1])).status).toBe(201);

  const deadline = Date.now() + 20_000;
  let now = before;
  const moved = (n: string) => (now.get(n) ?? 0) > 0;
  while (!Object.values(names).every(moved) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    now = await metrics();
  }
  expect(Object.fromEntries(Object.values(names).map((n) => [n, moved(n)]))).toEqual(Object.fromEntries(Object.values(names).map((n) => [n, true])));
}, 60_000);
