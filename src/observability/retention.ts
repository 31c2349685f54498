// Retention and compaction metrics (retention/runner.ts). No label names a stream.
import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "./metrics.ts";

const registers = [registry];

export const retentionRowsRemoved = new Counter({
  name: "ds_retention_rows_removed_total",
  help: "Chunk rows removed, by reason (retention: age or size; compaction: superseded State Protocol changes)",
  labelNames: ["reason"] as const,
  registers,
});

export const retentionBytesRemoved = new Counter({
  name: "ds_retention_bytes_removed_total",
  help: "Stored message bytes removed, by reason",
  labelNames: ["reason"] as const,
  registers,
});

export const retentionPassSeconds = new Histogram({
  name: "ds_retention_pass_seconds",
  help: "Time one background pass over the due streams takes",
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
  registers,
});

export const retentionPasses = new Counter({
  name: "ds_retention_passes_total",
  help: "Background passes, by result",
  labelNames: ["result"] as const,
  registers,
});

export const retentionLag = new Gauge({
  name: "ds_retention_lag_positions",
  help: "After the last pass on this instance: positions its policies would still remove (the earliest offset's lag behind policy; 0 when caught up)",
  registers,
});
