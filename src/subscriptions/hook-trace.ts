// TEMPORARY (issue 30.3 breakdown): marks the steps of one append's webhook on the shared
// monotonic clock (process.hrtime), one JSON line per delivery to DS_HOOK_TRACE. Sequential
// appends with one subscription only: a single current record.
import { appendFileSync } from "node:fs";

const file = process.env.DS_HOOK_TRACE;
let current: Record<string, number> = {};
const now = () => performance.timeOrigin + performance.now();

export function mark(name: string): void {
  if (!file) return;
  if (current[name] === undefined) current[name] = now();
}

export function flush(): void {
  if (!file) return;
  const r = current;
  current = {};
  appendFileSync(file, JSON.stringify(r) + "\n");
}
