// The checks every fault run under load must pass (faults.test.ts, failover.test.ts): the
// instances survived without an unexpected error, each writer's acknowledged appends are
// stored exactly once and in order, every live reader saw exactly the stored sequence, no
// 500 and no hang, 503 only during an outage, and appends and live reads resumed in time.
import { expect } from "bun:test";
import type { FaultRun } from "./fault-load.ts";
import type { SpawnedServer } from "./spawn-server.ts";

export function expectCleanRun(run: FaultRun, instances: SpawnedServer[], resumeBoundMs: number): void {
  for (const s of instances) expect(s.proc.exitCode).toBeNull();
  expect(instances.map((s) => s.output()).join("\n")).not.toContain("unexpected error");
  for (const w of run.writers) expect({ writer: w.id, stored: run.storedSeqs(w) }).toEqual({ writer: w.id, stored: [...Array(w.acked).keys()] });
  expect(run.writers.every((w) => w.acked > 20)).toBe(true);
  for (const r of run.readers) expect({ reader: r.name, items: r.items.length, same: r.matches }).toEqual({ reader: r.name, items: run.stored(r.stream).length, same: true });
  expect(run.fiveHundreds).toEqual([]);
  expect(run.unexpected).toEqual([]);
  expect(run.hangs).toEqual([]);
  expect(run.unavailableOutsideOutage).toEqual([]);
  for (const f of run.recovery) {
    expect({ fault: f.kind, writeResumeMs: f.writeResumeMs <= resumeBoundMs }).toEqual({ fault: f.kind, writeResumeMs: true });
    expect({ fault: f.kind, readResumeMs: f.readResumeMs <= resumeBoundMs }).toEqual({ fault: f.kind, readResumeMs: true });
  }
}
