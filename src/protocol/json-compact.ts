// Recognises JSON text that is already in the form messages are stored in (JSON.stringify
// of its parse), straight from the bytes: such a message is copied as it came, with no
// string, parse or re-serialisation (for 4M tiny messages those cost seconds, and on Bun
// some 50 MB of garbage before a collection). Conservative: anything it is unsure of
// (escapes, fractions, exponents, digit-only keys, which JS reorders, duplicate keys, deep
// nesting) is left to the parse, so it may say no to a compact text but never yes to one
// that JSON.stringify would write differently, or to invalid JSON.
// The bytes must be valid UTF-8 (checked once for the whole body).

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** Deepest nesting and most keys per object looked at; past them the parse decides. */
const MAX_NEST = 32;
const MAX_KEYS = 32;

/** Key ranges of the objects being scanned, innermost last (shared: the scan never re-enters). */
const keyStarts: number[] = [];
const keyEnds: number[] = [];

/** Whether b[start, end) is exactly what JSON.stringify(JSON.parse(text)) would give. */
export function isCompactJson(b: Uint8Array, start: number, end: number): boolean {
  keyStarts.length = keyEnds.length = 0;
  return value(b, start, end, 0) === end;
}

/** Where the value at `i` ends, or -1. */
function value(b: Uint8Array, i: number, end: number, depth: number): number {
  if (i >= end) return -1;
  const c = b[i];
  if (c === QUOTE) return string(b, i, end);
  if (c === 0x7b /* { */) return depth < MAX_NEST ? object(b, i, end, depth) : -1;
  if (c === 0x5b /* [ */) return depth < MAX_NEST ? array(b, i, end, depth) : -1;
  if (c === 0x74 /* t */) return literal(b, i, end, TRUE);
  if (c === 0x66 /* f */) return literal(b, i, end, FALSE);
  if (c === 0x6e /* n */) return literal(b, i, end, NULL);
  return integer(b, i, end);
}

/** A string without escapes or control characters (JSON.stringify writes those as they came). */
function string(b: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const d = b[j];
    if (d === QUOTE) return j + 1;
    if (d === BACKSLASH || d < 0x20) return -1;
  }
  return -1;
}

/**
 * An integer of at most 15 digits (all exact as doubles), without a leading zero or a
 * minus before zero (-0 is written 0). Fractions and exponents stop here and fail the caller.
 */
function integer(b: Uint8Array, i: number, end: number): number {
  let j = b[i] === 0x2d /* - */ ? i + 1 : i;
  const first = j;
  if (j >= end || !isDigit(b[j])) return -1;
  if (b[j] === 0x30) return j === i && !(j + 1 < end && isDigit(b[j + 1])) ? j + 1 : -1;
  while (j < end && isDigit(b[j])) j++;
  return j - first <= 15 ? j : -1;
}

const bytesOf = (s: string) => new TextEncoder().encode(s);
const TRUE = bytesOf("true");
const FALSE = bytesOf("false");
const NULL = bytesOf("null");

function literal(b: Uint8Array, i: number, end: number, word: Uint8Array): number {
  if (end - i < word.length) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

function array(b: Uint8Array, i: number, end: number, depth: number): number {
  let j = i + 1;
  if (b[j] === 0x5d /* ] */) return j + 1;
  for (;;) {
    j = value(b, j, end, depth + 1);
    if (j < 0 || j >= end) return -1;
    if (b[j] === 0x5d) return j + 1;
    if (b[j] !== COMMA) return -1;
    j++;
  }
}

function object(b: Uint8Array, i: number, end: number, depth: number): number {
  let j = i + 1;
  if (b[j] === 0x7d /* } */) return j + 1;
  const first = keyStarts.length;
  try {
    for (;;) {
      if (b[j] !== QUOTE) return -1;
      const k = string(b, j, end);
      if (k < 0 || !plainKey(b, j + 1, k - 1, first)) return -1;
      keyStarts.push(j + 1);
      keyEnds.push(k - 1);
      if (b[k] !== COLON) return -1;
      j = value(b, k + 1, end, depth + 1);
      if (j < 0 || j >= end) return -1;
      if (b[j] === 0x7d) return j + 1;
      if (b[j] !== COMMA) return -1;
      j++;
    }
  } finally {
    keyStarts.length = keyEnds.length = first;
  }
}

/**
 * A key whose place JSON.stringify keeps: not digits only (JS lists integer keys first, in
 * numeric order), not a repeat of an earlier key of the object (the last one wins), and
 * not past MAX_KEYS.
 */
function plainKey(b: Uint8Array, s: number, e: number, first: number): boolean {
  let digits = e > s;
  for (let k = s; k < e && digits; k++) digits = isDigit(b[k]);
  if (digits || keyStarts.length - first >= MAX_KEYS) return false;
  for (let n = first; n < keyStarts.length; n++) {
    const ps = keyStarts[n];
    if (keyEnds[n] - ps !== e - s) continue;
    let same = true;
    for (let k = 0; k < e - s && same; k++) same = b[ps + k] === b[s + k];
    if (same) return false;
  }
  return true;
}
