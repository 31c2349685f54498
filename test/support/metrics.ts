// Reading the Prometheus text format in tests, and checking it with promtool (Debian's
// prometheus package; .ci/run installs it) when it is installed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const PROMTOOL = process.env.PROMTOOL_BIN ?? "/usr/bin/promtool";
export const hasPromtool = existsSync(PROMTOOL);

/** Sample lines as "name{labels}" -> value, labels exactly as exposed (prom-client keeps their order). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** The value of a sample, 0 when it is absent (a labelled counter not yet incremented). */
export function sample(metrics: Map<string, number>, key: string): number {
  return metrics.get(key) ?? 0;
}

/** `promtool check metrics` over the text: its exit status and what it printed. */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  const run = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: run.status, output: `${run.stdout ?? ""}${run.stderr ?? ""}` };
}
