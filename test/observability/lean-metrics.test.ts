// The lean counters and histograms of the request path must expose exactly what
// prom-client's own would for the same observations: same lines, same label order, same
// bucket edges (values on and between the bounds, beyond the largest, and zero).
import { describe, expect, test } from "bun:test";
import { Counter, Histogram, Registry } from "prom-client";
import { LeanCounter, LeanHistogram } from "../../src/observability/lean-metrics.ts";

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.5, 2.5];
const OBSERVED = [0, 0.0005, 0.001, 0.0010001, 0.003, 0.005, 0.0099, 0.5, 2.5, 2.6, 100];

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  return { theirs, ours };
}

describe("lean metrics expose what prom-client's would", () => {
  test("a labelled counter", async () => {
    const { theirs, ours } = pair();
    const opts = { name: "t_requests_total", help: "requests", labelNames: ["method", "status"] as const };
    const a = new Counter({ ...opts, registers: [theirs] });
    const b = new LeanCounter({ ...opts, registers: [ours] });
    for (const [m, s, n] of [["GET", "200", 1], ["POST", "204", 3], ["GET", "200", 2], ["GET", "404", 1]] as const) {
      a.inc({ method: m, status: s }, n);
      b.labels(m, s).inc(n);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('t_requests_total{method="GET",status="200"} 3');
  });

  test("an unlabelled counter shows 0 before its first count", async () => {
    const { theirs, ours } = pair();
    new Counter({ name: "t_total", help: "things", registers: [theirs] });
    new LeanCounter({ name: "t_total", help: "things", registers: [ours] }).labels();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  test("a labelled histogram, values on and between the bounds", async () => {
    const { theirs, ours } = pair();
    const opts = { name: "t_seconds", help: "time", labelNames: ["operation"] as const, buckets: BUCKETS };
    const a = new Histogram({ ...opts, registers: [theirs] });
    const b = new LeanHistogram({ ...opts, registers: [ours] });
    OBSERVED.forEach((v, i) => {
      const op = i % 3 === 0 ? "read" : "append";
      a.observe({ operation: op }, v);
      b.labels(op).observe(v);
    });
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('t_seconds_bucket{le="+Inf",operation="append"} 7');
  });

  test("an unlabelled histogram", async () => {
    const { theirs, ours } = pair();
    const a = new Histogram({ name: "t_size", help: "size", buckets: [1, 2, 4, 8], registers: [theirs] });
    const b = new LeanHistogram({ name: "t_size", help: "size", buckets: [1, 2, 4, 8], registers: [ours] }).labels();
    for (const v of [1, 1, 3, 8, 9, 27]) {
      a.observe(v);
      b.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  test("the wrong number of label values is a programming error", () => {
    const c = new LeanCounter({ name: "t_x_total", help: "x", labelNames: ["a", "b"] as const, registers: [new Registry()] });
    expect(() => c.labels("only-one")).toThrow(/2 label values/);
  });
});
