// Postgres array literals for bulk statements (`unnest($1::int8[], ...)`): one parameter per
// column instead of one per value keeps group statements short and their text constant.
// Passed as text and cast in SQL, which both postgres.js and PGlite handle the same way.

type Scalar = string | number | boolean | null;

function element(v: Scalar): string {
  if (v === null) return "NULL";
  if (typeof v === "boolean") return v ? "t" : "f";
  if (typeof v === "number") return String(v);
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function pgArray(values: readonly Scalar[]): string {
  return `{${values.map(element).join(",")}}`;
}
