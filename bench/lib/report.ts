// bench/results/<name>.json and .md: raw numbers for tools, a table for people.
import { type Check, COLUMN_TITLES, type Column, fmt, type ScenarioResult } from "./results.ts";
import type { MachineInfo } from "./machine.ts";

export interface RunReport {
  date: string;
  quick: boolean;
  machine: MachineInfo;
  /** Scenario id → its latest result (a partial run keeps the others from earlier runs). */
  scenarios: Record<string, ScenarioResult>;
  failures: Record<string, string>;
}

const COLUMNS: Column[] = ["ours-1", "ours-3", "ref-mem", "ref-file", "extra"];
const SCENARIO_ORDER = ["append", "hot", "read", "fanout", "idle", "scale", "workers", "subs"];

export function orderedScenarios(r: RunReport): ScenarioResult[] {
  return Object.values(r.scenarios).sort((a, b) => SCENARIO_ORDER.indexOf(a.id) - SCENARIO_ORDER.indexOf(b.id));
}

export function checkText(c: Check): string {
  const unit = c.unit === "×" ? "×" : ` ${c.unit}`;
  return `${fmt(c.value)}${unit} (${c.op === ">=" ? "≥" : "≤"} ${fmt(c.threshold)}${unit})`;
}

export function markdown(r: RunReport, chartFile = "chart.svg"): string {
  const out: string[] = [];
  out.push(`# Benchmark results${r.quick ? " (quick smoke run: short and small, not comparable)" : ""}`, "");
  out.push(`${r.date} · ${r.machine.cores} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB · ${r.machine.postgres}`);
  out.push(`Bun ${r.machine.bun} · reference ${r.machine.reference} ${r.machine.node} · ${r.machine.wrk} · ${r.machine.nginx}`);
  out.push(`Server code: ${r.machine.serverCode}`, "");
  out.push(`![chart](${chartFile})`, "");
  const scenarios = orderedScenarios(r);

  out.push("## Results", "");
  out.push(`| scenario | ${COLUMNS.slice(0, 4).map((c) => COLUMN_TITLES[c]).join(" | ")} | other | vs targets |`);
  out.push(`|---|${"---:|".repeat(5)}---|`);
  for (const s of scenarios) {
    s.rows.filter((row) => !row.table).forEach((row, i) => {
      const cells = COLUMNS.map((c) => {
        const cell = row.cells[c];
        if (!cell) return "–";
        const text = cell.text ?? fmt(cell.value);
        return c === "extra" && row.extraLabel ? `${text} (${row.extraLabel})` : text;
      });
      const checks = i === 0 ? s.checks.map((c) => `${c.pass ? "**pass**" : "**short**"} ${c.label}: ${checkText(c)}`).join("<br>") : "";
      out.push(`| ${row.metric} (${row.unit}) | ${cells.join(" | ")} | ${checks} |`);
    });
  }
  out.push("");
  for (const s of scenarios) out.push(...ownTables(s));

  out.push("## Targets", "");
  out.push("| target | measured | required | status | basis |", "|---|---:|---:|---|---|");
  for (const s of scenarios) {
    for (const c of s.checks) {
      const unit = c.unit === "×" ? "×" : ` ${c.unit}`;
      out.push(`| ${c.label} | ${fmt(c.value)}${unit} | ${c.op === ">=" ? "≥" : "≤"} ${fmt(c.threshold)}${unit} | ${c.pass ? "pass" : "short"} | ${c.basis} |`);
    }
  }
  out.push("");

  out.push("## Details", "");
  for (const s of scenarios) {
    out.push(`### ${s.title}`, "", `Measured ${s.date}${s.quick ? " (quick)" : ""}.`, "");
    for (const row of s.rows) {
      for (const c of COLUMNS) {
        const cell = row.cells[c];
        if (!cell?.detail) continue;
        const who = c === "extra" ? row.extraLabel ?? "other" : COLUMN_TITLES[c];
        out.push(`- ${row.table ? `${row.table}, ` : ""}${row.metric}, ${who}: \`${JSON.stringify(cell.detail)}\``);
      }
      if (row.note) out.push(`- ${row.note}`);
    }
    for (const n of s.notes) out.push(`- Note: ${n}`);
    out.push("");
  }
  const failed = Object.entries(r.failures);
  if (failed.length) {
    out.push("## Failed scenarios", "");
    for (const [id, msg] of failed) out.push(`- ${id}: ${msg.split("\n")[0]}`);
    out.push("");
  }
  return out.join("\n");
}

/** The rows a scenario puts in tables of their own: metric down, the columns that have a value across. */
function ownTables(s: ScenarioResult): string[] {
  const out: string[] = [];
  for (const table of new Set(s.rows.flatMap((row) => (row.table ? [row.table] : [])))) {
    const rows = s.rows.filter((row) => row.table === table);
    const cols = COLUMNS.filter((c) => rows.some((row) => row.cells[c]));
    const title = (c: Column) => (c === "extra" ? rows.find((row) => row.extraLabel)?.extraLabel ?? "other" : COLUMN_TITLES[c]);
    out.push(`### ${table}`, "", `Measured ${s.date}${s.quick ? " (quick)" : ""}.`, "");
    out.push(`| ${rows[0].unit} | ${cols.map(title).join(" | ")} |`, `|---|${"---:|".repeat(cols.length)}`);
    for (const row of rows) out.push(`| ${row.metric} | ${cols.map((c) => row.cells[c]?.text ?? fmt(row.cells[c]?.value)).join(" | ")} |`);
    out.push("");
  }
  return out;
}
