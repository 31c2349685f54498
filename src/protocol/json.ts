// JSON mode (PROTOCOL 9.1): validate, flatten one level of arrays, frame responses.
//
// A JSON append is split without building the whole document as JS values, and without a
// JS object per message: a scan over the bytes finds the top-level elements of an array
// body, each element is parsed and re-serialised on its own (so every message is validated
// and stored in the same compact form as before), and the results are written one after
// the other into ONE buffer, separated by newlines (JsonMessages). That buffer travels
// through the store to the database as it is. Parsing an 8 MB body of 4M tiny messages at
// once cost +663 MB (about 80 bytes per body byte) and, at about 700k messages, a 500 from a
// spread of the message array; one small array per message still cost about 300 bytes
// each (issue 25). The messages are counted before any is parsed, so a body over the cap
// costs one scan and a 413.
import { isUtf8 } from "node:buffer";
import { BadRequest, PayloadTooLarge } from "./errors.ts";
import { isCompactJson } from "./json-compact.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

/** Default for MAX_MESSAGES_PER_APPEND (config.ts): the conformance suite sends at most 1,024. */
export const MAX_MESSAGES_DEFAULT = 100_000;

/**
 * A body's messages as stored: each in compact form, joined by "\n". The compact form
 * (JSON.stringify) escapes every control character, so a raw newline never occurs inside a
 * message and marks exactly the boundaries.
 */
export interface JsonMessages {
  data: Uint8Array;
  count: number;
}

/** The byte between two messages of JsonMessages.data. */
export const MESSAGE_SEPARATOR = 0x0a;

export interface SplitOptions {
  /** An empty array is an error for an append (9.1.3) and an empty stream for a create. */
  allowEmptyArray: boolean;
  /** More messages than this in one body is a 413. */
  maxMessages?: number;
}

/**
 * Splits a JSON request body into stored messages. The body's own buffer is reused for them
 * (the caller must not read `body` afterwards; the messages are its replacement): writes stay
 * behind the scan, since a compact message is never longer than the text it came from plus
 * the comma before it. Only a message that grows when re-serialised moves the rest to a
 * buffer of their own.
 */
export function splitJsonMessages(body: Uint8Array, opts: SplitOptions): JsonMessages {
  if (!isUtf8(body)) throw new BadRequest("request body is not valid JSON");
  // Refused before parsing: a document this deep parses on one runtime and not the other,
  // and on Bun takes seconds to fail (200k levels: about 3 s to a stack overflow).
  if (deeperThan(body, MAX_DEPTH)) throw new BadRequest(JSON_TOO_DEEP);
  // A byte order mark may lead the body (TextDecoder drops it, as before this scan).
  const bom = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const open = skipSpace(body, bom);
  if (body[open] !== 0x5b /* [ */) return { data: single(body, open), count: 1 };
  const count = scanArray(body, open, () => {});
  if (count < 0) throw new BadRequest("request body is not valid JSON");
  if (count === 0 && !opts.allowEmptyArray) throw new BadRequest("empty JSON array appends nothing");
  const max = opts.maxMessages ?? MAX_MESSAGES_DEFAULT;
  if (count > max) throw new PayloadTooLarge(`a JSON append may carry at most ${max} messages; this one has ${count}`);
  const out = new MessageWriter(body);
  scanArray(body, open, (start, end) => out.add(start, end));
  return { data: out.done(), count };
}

/** A body that is one message: itself when already compact (no copy), else re-serialised. */
function single(body: Uint8Array, start: number): Uint8Array {
  let end = body.byteLength;
  while (end > start && isSpace(body[end - 1])) end--;
  if (isCompactJson(body, start, end)) return body.subarray(start, end);
  return encoder.encode(normalise(decoder.decode(body)));
}

/**
 * Writes messages one after the other, separated by newlines, over the body they are read
 * from (then into a buffer of its own if one grows past its place). A message already in
 * compact form is moved as it came.
 */
class MessageWriter {
  private buf: Uint8Array;
  private inPlace = true;
  private at = 0;

  constructor(private readonly body: Uint8Array) {
    this.buf = body;
  }

  /** Adds the message at body[start, end); nothing at or past `end` is written while in place. */
  add(start: number, end: number): void {
    const n = end - start;
    if (!this.inPlace) this.room(n + 1);
    if (this.at > 0) this.buf[this.at++] = MESSAGE_SEPARATOR;
    if (isCompactJson(this.body, start, end)) {
      // A loop for short messages (a view per message costs more than the copy); the
      // destination is never ahead of the source, so a forward copy is safe in place.
      if (n < 64) for (let k = 0; k < n; k++) this.buf[this.at + k] = this.body[start + k];
      else if (this.inPlace) this.buf.copyWithin(this.at, start, end);
      else this.buf.set(this.body.subarray(start, end), this.at);
      this.at += n;
      return;
    }
    const compact = normalise(decoder.decode(this.body.subarray(start, end)));
    let { read, written } = encoder.encodeInto(compact, this.buf.subarray(this.at, this.inPlace ? end : undefined));
    if (read < compact.length) {
      // Re-serialising lengthened it (1e21 is stored as 1e+21): on in a buffer of its own,
      // with room for the worst case (3 bytes per UTF-16 unit).
      this.leave(3 * compact.length);
      ({ written } = encoder.encodeInto(compact, this.buf.subarray(this.at)));
    }
    this.at += written;
  }

  /** Moves what is written so far to a buffer of its own, with `n` bytes free. */
  private leave(n: number): void {
    if (this.inPlace) {
      this.inPlace = false;
      const own = new Uint8Array(Math.max(this.body.byteLength, this.at + n));
      own.set(this.buf.subarray(0, this.at));
      this.buf = own;
    }
    this.room(n);
  }

  /** Makes sure `n` bytes are free at the end of a buffer of its own. */
  private room(n: number): void {
    if (this.buf.byteLength - this.at >= n) return;
    const grown = new Uint8Array(Math.max(this.buf.byteLength + (this.buf.byteLength >> 2), this.at + n));
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
  }

  done(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

/** The messages of JsonMessages.data one by one, as views (for the few places that need them apart). */
export function* eachMessage(data: Uint8Array): Generator<Uint8Array> {
  if (data.byteLength === 0) return;
  let start = 0;
  for (;;) {
    const end = data.indexOf(MESSAGE_SEPARATOR, start);
    if (end < 0) return yield data.subarray(start);
    yield data.subarray(start, end);
    start = end + 1;
  }
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

// The scans below work on the UTF-8 bytes: every byte they look at (quotes, backslashes,
// brackets, commas, whitespace) is ASCII, and no byte of a multi-byte character is.

/** Whether arrays and objects nest more than `limit` deep (strings skipped, no recursion). */
function deeperThan(b: Uint8Array, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 0x22 /* " */) {
      for (i++; i < b.length; i++) {
        const d = b[i];
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

function skipSpace(b: Uint8Array, i: number): number {
  while (i < b.length && isSpace(b[i])) i++;
  return i;
}

/**
 * Calls `each(start, end)` for every top-level element of the array that opens at `open`
 * (whitespace around it excluded) and returns how many there were, or -1 when the bytes
 * around them are not an array followed only by whitespace. Elements are not checked here:
 * each is parsed on its own, and a body whose every element parses and whose separators
 * are right is valid JSON. Depth is a counter, not recursion, so no nesting overflows the
 * stack here.
 */
function scanArray(b: Uint8Array, open: number, each: (start: number, end: number) => void): number {
  const n = b.length;
  let i = skipSpace(b, open + 1);
  let count = 0;
  if (b[i] === 0x5d /* ] */) return skipSpace(b, i + 1) === n ? 0 : -1;
  for (;;) {
    const start = i;
    let depth = 0;
    for (; i < n; i++) {
      const c = b[i];
      if (c === 0x22 /* " */) {
        for (i++; i < n; i++) {
          const d = b[i];
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
    let end = i;
    while (end > start && isSpace(b[end - 1])) end--;
    each(start, end);
    count++;
    const c = b[i];
    if (c === 0x7d) return -1;
    i = skipSpace(b, i + 1);
    if (c === 0x5d) return i === n ? count : -1;
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
