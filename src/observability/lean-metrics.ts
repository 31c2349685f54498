// Counters and histograms for the per-request and per-append path. prom-client's own
// validate and hash their label object and find a bucket by the bound's string form on
// every call: on a hot stream that was 6.6 % of the server's CPU (bench/README.md). Here a
// label set is resolved once to a child (one Map lookup by its values), and a child counts
// into plain numbers. The registry still writes the exposition: these register with it
// (registerMetric) and hand it, at scrape time, the same values prom-client's would.
import type { Registry } from "prom-client";

interface Options<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers: Registry[];
}

/** One exposed sample, as prom-client's registry formats it. */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

abstract class LeanMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: "counter" | "histogram";
  private readonly labelNames: readonly L[];
  private readonly children = new Map<string, { labels: Record<string, string>; child: C }>();
  private unlabelled?: C;

  constructor(opts: Options<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  protected abstract create(): C;
  protected abstract samples(labels: Record<string, string>, child: C): Sample[];

  /** The child of these label values, in labelNames order (created on first use). */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected`);
    if (values.length === 0) return (this.unlabelled ??= this.create());
    const key = values.length === 1 ? values[0] : values.join("\u0000");
    let entry = this.children.get(key);
    if (!entry) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]]));
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** What prom-client's registry reads at scrape time. */
  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: "sum" }> {
    const values: Sample[] = [];
    if (this.unlabelled) values.push(...this.samples({}, this.unlabelled));
    for (const { labels, child } of this.children.values()) values.push(...this.samples(labels, child));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: "sum" });
  }

  reset(): void {
    this.children.clear();
    this.unlabelled = undefined;
  }
}

export class CounterChild {
  value = 0;

  inc(n = 1): void {
    this.value += n;
  }
}

export class LeanCounter<L extends string = never> extends LeanMetric<L, CounterChild> {
  readonly type = "counter";

  protected create(): CounterChild {
    return new CounterChild();
  }

  protected samples(labels: Record<string, string>, c: CounterChild): Sample[] {
    return [{ labels, value: c.value }];
  }
}

export class HistogramChild {
  /** Observations per bucket, not cumulative; the last slot is beyond the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export class LeanHistogram<L extends string = never> extends LeanMetric<L, HistogramChild> {
  readonly type = "histogram";
  private readonly bounds: readonly number[];

  constructor(opts: Options<L> & { buckets: readonly number[] }) {
    super(opts);
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }

  protected samples(labels: Record<string, string>, h: HistogramChild): Sample[] {
    const out: Sample[] = [];
    let acc = 0;
    this.bounds.forEach((le, i) => {
      acc += h.counts[i];
      out.push({ labels: { le, ...labels }, value: acc, metricName: `${this.name}_bucket` });
    });
    out.push({ labels: { le: "+Inf", ...labels }, value: h.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: h.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: h.count, metricName: `${this.name}_count` });
    return out;
  }
}
