// A hand-written SVG: how far each target is met (1.0 = exactly on target), then the
// raw numbers of each scenario side by side. No chart library: a few rects and texts.
import { checkText, orderedScenarios, type RunReport } from "./report.ts";
import { type Check, COLUMN_TITLES, type Column, fmt } from "./results.ts";

const W = 1000;
const LABEL_W = 390;
const BAR_W = 360;
const ROW_H = 24;
const COLORS: Record<Column, string> = {
  "ours-1": "#2563eb",
  "ours-3": "#60a5fa",
  "ref-mem": "#f59e0b",
  "ref-file": "#b45309",
  extra: "#6b7280",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const text = (x: number, y: number, s: string, attrs = "") => `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`;

/** Attainment: measured over required for "at least" targets, required over measured for "at most". */
export function attainment(c: Check): number {
  if (!Number.isFinite(c.value)) return 0;
  if (c.op === ">=") return c.value / c.threshold;
  return c.value <= 0 ? 4 : c.threshold / c.value;
}

export function chartSvg(r: RunReport): string {
  const scenarios = orderedScenarios(r);
  const checks = scenarios.flatMap((s) => s.checks);
  const parts: string[] = [];
  let y = 30;
  parts.push(text(10, y, `Targets met (bar = measured ÷ required; the line is the target)${r.quick ? " — QUICK RUN" : ""}`, `font-weight="bold" font-size="15"`));
  y += 16;
  const maxScale = Math.min(4, Math.max(2, ...checks.map(attainment)));
  const x0 = LABEL_W;
  const scale = (v: number) => (Math.min(v, maxScale) / maxScale) * BAR_W;
  const top = y;
  for (const c of checks) {
    const a = attainment(c);
    parts.push(text(x0 - 8, y + 16, c.label, `text-anchor="end" font-size="12"`));
    parts.push(`<rect x="${x0}" y="${y + 4}" width="${Math.max(1, scale(a)).toFixed(1)}" height="${ROW_H - 8}" fill="${c.pass ? "#16a34a" : "#dc2626"}"/>`);
    parts.push(text(x0 + BAR_W + 8, y + 16, `${c.pass ? "pass" : "short"} · ${checkText(c)}`, `font-size="12"`));
    y += ROW_H;
  }
  const targetX = x0 + scale(1);
  parts.push(`<line x1="${targetX}" y1="${top}" x2="${targetX}" y2="${y}" stroke="#111" stroke-dasharray="4 3"/>`);
  parts.push(text(targetX, y + 14, "target", `text-anchor="middle" font-size="11"`));
  y += 40;

  parts.push(text(10, y, "Measured values (each row scaled to its largest value; ↓ lower is better)", `font-weight="bold" font-size="15"`));
  y += 10;
  const legend: Column[] = ["ours-1", "ours-3", "ref-mem", "ref-file", "extra"];
  legend.forEach((c, i) => {
    const lx = 10 + i * 185;
    parts.push(`<rect x="${lx}" y="${y + 6}" width="12" height="12" fill="${COLORS[c]}"/>`);
    parts.push(text(lx + 16, y + 16, c === "extra" ? "pgbench ceiling / fan-out floor" : COLUMN_TITLES[c], `font-size="12"`));
  });
  y += 30;
  for (const s of scenarios) {
    for (const row of s.rows) {
      if (row.table) continue;
      const cols = legend.filter((c) => row.cells[c]);
      if (cols.length === 0) continue;
      const lowerIsBetter = /^(ms|MiB|KiB|% of a core)$/.test(row.unit);
      const values = cols.map((c) => row.cells[c]!.value).filter((v) => Number.isFinite(v) && v > 0);
      const max = Math.max(...values, 1e-9);
      // Spreads of 30× and more (a file store next to memory) go on a log scale.
      const log = values.length > 1 && max / Math.min(...values) >= 30;
      const min = log ? Math.min(...values) / 2 : 0;
      const width = (v: number) => (log ? (Math.log(v / min) / Math.log(max / min)) * BAR_W : (v / max) * BAR_W);
      const label = `${row.metric} (${row.unit})${lowerIsBetter ? " ↓" : ""}${log ? ", log scale" : ""}`;
      parts.push(text(x0 - 8, y + 13, label, `text-anchor="end" font-size="12" font-weight="bold"`));
      for (const c of cols) {
        const cell = row.cells[c]!;
        const w = Number.isFinite(cell.value) && cell.value > 0 ? Math.max(1, width(cell.value)) : 0;
        parts.push(`<rect x="${x0}" y="${y + 3}" width="${w.toFixed(1)}" height="14" fill="${COLORS[c]}"/>`);
        parts.push(text(x0 + w + 6, y + 14, cell.text ?? fmt(cell.value), `font-size="11"`));
        y += 18;
      }
      y += 8;
    }
  }
  y += 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
