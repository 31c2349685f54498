// The shape every scenario reports, shared by run.ts, the markdown table and the chart.
export type Column = "ours-1" | "ours-3" | "ref-mem" | "ref-file" | "extra";

export const COLUMN_TITLES: Record<Column, string> = {
  "ours-1": "ours, 1 instance",
  "ours-3": "ours, 3 instances via nginx",
  "ref-mem": "reference, memory",
  "ref-file": "reference, file",
  extra: "other",
};

export interface Cell {
  value: number;
  /** Shown instead of the bare value when set (e.g. "2.1 / 9.8"). */
  text?: string;
  /** Raw numbers behind the cell: latency, CPU split, errors... */
  detail?: Record<string, unknown>;
}

export interface MetricRow {
  metric: string;
  unit: string;
  cells: Partial<Record<Column, Cell>>;
  /** What the "other" column holds for this row, e.g. "pgbench ceiling". */
  extraLabel?: string;
  note?: string;
  /**
   * Rows sharing a table name get a table of their own (e.g. one row per connection
   * count), left out of the summary table and the chart.
   */
  table?: string;
}

export interface Check {
  label: string;
  /** The number compared with the threshold (a ratio, milliseconds, MiB). */
  value: number;
  unit: "×" | "ms" | "MiB";
  op: ">=" | "<=";
  threshold: number;
  pass: boolean;
  /** How the value was obtained, e.g. "12,000 / 9,500 appends/s". */
  basis: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  date: string;
  quick: boolean;
  rows: MetricRow[];
  checks: Check[];
  notes: string[];
}

export function ratioCheck(label: string, ours: number, peer: number, threshold: number, unit: string): Check {
  const value = peer > 0 ? ours / peer : NaN;
  return {
    label,
    value,
    unit: "×",
    op: ">=",
    threshold,
    pass: value >= threshold,
    basis: `${fmt(ours)} / ${fmt(peer)} ${unit}`,
  };
}

export function limitCheck(label: string, value: number, op: ">=" | "<=", threshold: number, unit: "ms" | "MiB" | "×", basis: string): Check {
  return { label, value, unit, op, threshold, pass: op === "<=" ? value <= threshold : value >= threshold, basis };
}

/** Server plus Postgres CPU per request of a wrk cell (µs), or NaN when the cell has none. */
export function cpuPerRequest(cell: Cell | undefined): number {
  const cpu = (cell?.detail as { cpuUsPerRequest?: { server: number; postgres: number } } | undefined)?.cpuUsPerRequest;
  return cpu ? cpu.server + cpu.postgres : NaN;
}

export function fmt(n: number | undefined, digits?: number): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
