// Postgres array literals for bulk statements (`unnest($1::int8[], ...)`): one parameter per
// column instead of one per value keeps group statements short and their text constant.
// Passed as text and cast in SQL, which both postgres.js and PGlite handle the same way.

type Scalar = string | number | boolean | null;

const NEEDS_ESCAPE = /[\\"]/;

function element(v: Scalar): string {
  if (v === null) return "NULL";
  if (typeof v === "boolean") return v ? "t" : "f";
  if (typeof v === "number") return String(v);
  return NEEDS_ESCAPE.test(v) ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${v}"`;
}

/** Above this many values a literal is joined once instead of built by concatenation. */
const JOIN_FROM = 256;

export function pgArray(values: readonly Scalar[]): string {
  // A JSON append of 100k messages makes columns of 100k values: built with `+=`, each
  // column was a rope of some 200k pieces (about 50 MB for the 7 columns of an 8.7 MB
  // append, measured on Bun); one join makes a flat string (issue 25).
  if (values.length > JOIN_FROM) {
    const parts = new Array<string>(values.length);
    for (let i = 0; i < values.length; i++) parts[i] = element(values[i]);
    return `{${parts.join(",")}}`;
  }
  // Called for every column of every group: a plain loop, not map and join.
  let out = "{";
  for (let i = 0; i < values.length; i++) out += (i === 0 ? "" : ",") + element(values[i]);
  return out + "}";
}
