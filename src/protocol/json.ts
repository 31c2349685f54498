// JSON mode (PROTOCOL 9.1): validate, flatten one level of arrays, frame responses.
//
// A JSON append is split without building the whole document as JS values: a scan over
// the text finds the top-level elements of an array body, each element is parsed and
// re-serialised on its own (so every message is validated and stored in the same compact
// form as before). Parsing an 8 MB body of
// 4M tiny messages at once cost +663 MB (about 80 bytes per body byte) and, at about 700k
// messages, a 500 from a spread of the message array (issue 25). The number of messages
// is counted before any is parsed, so a body over the cap costs one scan and a 413.
import { BadRequest, PayloadTooLarge } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Default for MAX_MESSAGES_PER_APPEND (config.ts): the conformance suite sends at most 1,024. */
export const MAX_MESSAGES_DEFAULT = 100_000;

export interface SplitOptions {
  /** An empty array is an error for an append (9.1.3) and an empty stream for a create. */
  allowEmptyArray: boolean;
  /** More messages than this in one body is a 413. */
  maxMessages?: number;
}

/** Splits a JSON request body into stored messages. */
export function splitJsonMessages(body: Uint8Array, opts: SplitOptions): Uint8Array[] {
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw new BadRequest("request body is not valid JSON");
  }
  // Refused before parsing: a document this deep parses on one runtime and not the other,
  // and on Bun takes seconds to fail (200k levels: about 3 s to a stack overflow).
  if (deeperThan(text, MAX_DEPTH)) throw new BadRequest(JSON_TOO_DEEP);
  const open = skipSpace(text, 0);
  if (text.charCodeAt(open) !== 0x5b /* [ */) return [encoder.encode(normalise(text))];
  const count = scanArray(text, open, () => {});
  if (count < 0) throw new BadRequest("request body is not valid JSON");
  if (count === 0 && !opts.allowEmptyArray) throw new BadRequest("empty JSON array appends nothing");
  const max = opts.maxMessages ?? MAX_MESSAGES_DEFAULT;
  if (count > max) throw new PayloadTooLarge(`a JSON append may carry at most ${max} messages; this one has ${count}`);
  // One small array per message: on Bun that costs less than views into one shared buffer
  // (about 300 bytes a message either way, measured; hence the cap).
  const out = new Array<Uint8Array>(count);
  let k = 0;
  scanArray(text, open, (start, end) => (out[k++] = encoder.encode(normalise(text.slice(start, end)))));
  return out;
}

/** One message's stored form: parsed (validated) and serialised compactly. */
function normalise(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json));
  } catch (err) {
    // A document nested deeper than the runtime's stack parses on one runtime and not
    // the other, or parses and then cannot be serialised: either way the client's input.
    throw new BadRequest(tooDeep(err) ? JSON_TOO_DEEP : "request body is not valid JSON");
  }
}

const JSON_TOO_DEEP = "request body is JSON nested too deeply";
const tooDeep = (err: unknown) => err instanceof RangeError;

/** Deepest nesting of arrays and objects accepted in a JSON body. */
export const MAX_DEPTH = 10_000;

/** Whether arrays and objects nest more than `limit` deep (strings skipped, no recursion). */
function deeperThan(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b /* [ { */) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d /* ] } */) depth--;
  }
  return false;
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * Calls `each(start, end)` for every top-level element of the array that opens at `open`
 * and returns how many there were, or -1 when the text around them is not an array
 * followed only by whitespace. Elements are not checked here: each is parsed on its own,
 * and a body whose every element parses and whose separators are right is valid JSON.
 * Depth is a counter, not recursion, so no nesting overflows the stack here.
 */
function scanArray(text: string, open: number, each: (start: number, end: number) => void): number {
  const n = text.length;
  let i = skipSpace(text, open + 1);
  let count = 0;
  if (text.charCodeAt(i) === 0x5d /* ] */) return skipSpace(text, i + 1) === n ? 0 : -1;
  for (;;) {
    const start = i;
    let depth = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22 /* " */) {
        for (i++; i < n; i++) {
          const d = text.charCodeAt(i);
          if (d === 0x5c /* \ */) i++;
          else if (d === 0x22) break;
        }
      } else if (c === 0x5b || c === 0x7b /* [ { */) depth++;
      else if (c === 0x5d || c === 0x7d /* ] } */) {
        if (depth === 0) break;
        depth--;
      } else if (c === 0x2c /* , */ && depth === 0) break;
    }
    if (i >= n) return -1;
    each(start, i);
    count++;
    const c = text.charCodeAt(i);
    if (c === 0x7d) return -1;
    i++;
    if (c === 0x5d) return skipSpace(text, i) === n ? count : -1;
  }
}

const OPEN = encoder.encode("[");
const CLOSE = encoder.encode("]");
const COMMA = encoder.encode(",");

/** Frames stored messages as one JSON array body. */
export function jsonArrayParts(messages: Uint8Array[]): Uint8Array[] {
  const parts: Uint8Array[] = [OPEN];
  messages.forEach((m, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(m);
  });
  parts.push(CLOSE);
  return parts;
}
