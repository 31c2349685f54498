// The metrics API for subscriptions: nothing on /metrics until the code calls it, then the
// four counters (named as README lists them), registered once however often it is called.
import { expect, test } from "bun:test";
import { registry } from "../../src/observability/metrics.ts";
import { SUBSCRIPTION_METRIC_NAMES, subscriptionMetrics } from "../../src/observability/subscriptions.ts";
import { parseMetrics } from "../support/metrics.ts";

test("subscription counters appear on first use and count", async () => {
  const names = Object.values(SUBSCRIPTION_METRIC_NAMES);
  expect(names).toEqual([
    "ds_subscription_deliveries_total",
    "ds_subscription_delivery_failures_total",
    "ds_subscription_retries_total",
    "ds_subscription_lease_expiries_total",
  ]);
  const before = parseMetrics(await registry.metrics());
  const m = subscriptionMetrics();
  expect(subscriptionMetrics()).toBe(m);
  m.deliveries.inc(3);
  m.failures.inc();
  m.retries.inc();
  m.leaseExpiries.inc(2);
  const after = parseMetrics(await registry.metrics());
  // Another test file in this process may have called it first: compare, don't assume zero.
  const moved = (n: string) => (after.get(n) ?? NaN) - (before.get(n) ?? 0);
  expect(names.map(moved)).toEqual([3, 1, 1, 2]);
});
