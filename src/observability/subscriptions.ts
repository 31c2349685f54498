// Metrics for subscriptions (the reserved __ds APIs), counted by the deliverer
// (subscriptions/deliverer.ts), which every server runs. Registered on first use (the
// deliverer's construction), once per process however many servers it holds.
import { Counter } from "prom-client";
import { registry } from "./metrics.ts";

export interface SubscriptionMetrics {
  /** A message batch delivered to a subscriber and acknowledged. */
  deliveries: Counter;
  /** A delivery attempt that failed (error, timeout, rejection by the subscriber). */
  failures: Counter;
  /** A delivery attempted again after a failure. */
  retries: Counter;
  /** A consumer's lease ran out before it renewed or acknowledged. */
  leaseExpiries: Counter;
}

export const SUBSCRIPTION_METRIC_NAMES = {
  deliveries: "ds_subscription_deliveries_total",
  failures: "ds_subscription_delivery_failures_total",
  retries: "ds_subscription_retries_total",
  leaseExpiries: "ds_subscription_lease_expiries_total",
} as const;

const HELP: Record<keyof SubscriptionMetrics, string> = {
  deliveries: "Subscription deliveries acknowledged",
  failures: "Subscription delivery attempts that failed",
  retries: "Subscription deliveries attempted again after a failure",
  leaseExpiries: "Subscription leases that expired before renewal or acknowledgement",
};

let metrics: SubscriptionMetrics | undefined;

/** The subscription counters, registered with the process registry on the first call. */
export function subscriptionMetrics(): SubscriptionMetrics {
  if (!metrics) {
    const make = (key: keyof SubscriptionMetrics) =>
      new Counter({ name: SUBSCRIPTION_METRIC_NAMES[key], help: HELP[key], registers: [registry] });
    metrics = { deliveries: make("deliveries"), failures: make("failures"), retries: make("retries"), leaseExpiries: make("leaseExpiries") };
  }
  return metrics;
}
