// Background work (timers, listeners, fire-and-forget follow-ups) has no request to fail:
// each failure is logged once, through the logger the component was given, and counted on
// /metrics by task, so nothing fails silently (issue 27).
import type { Logger } from "pino";
import { log as processLog } from "./log.ts";
import { backgroundFailures } from "./metrics.ts";

export type FailureReporter = (task: string, err: unknown, detail?: Record<string, unknown>) => void;

/** A reporter that logs through `logger` (default: the process logger at the time of the call). */
export function reportFailures(logger?: Logger): FailureReporter {
  return (task, err, detail) => {
    backgroundFailures.labels(task).inc();
    (logger ?? processLog).warn({ err, task, ...detail }, `${task} failed`);
  };
}
