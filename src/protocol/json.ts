// JSON mode (PROTOCOL 9.1): validate, flatten one level of arrays, frame responses.
import { BadRequest } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Splits a JSON request body into stored messages. An empty array is an error for an
 * append (9.1.3) and an empty stream for a create.
 */
export function splitJsonMessages(body: Uint8Array, opts: { allowEmptyArray: boolean }): Uint8Array[] {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch (err) {
    throw new BadRequest(tooDeep(err) ? JSON_TOO_DEEP : "request body is not valid JSON");
  }
  if (Array.isArray(value) && value.length === 0 && !opts.allowEmptyArray) {
    throw new BadRequest("empty JSON array appends nothing");
  }
  try {
    if (!Array.isArray(value)) return [encoder.encode(JSON.stringify(value))];
    return value.map((message) => encoder.encode(JSON.stringify(message ?? null)));
  } catch (err) {
    // A document nested deeper than the runtime's stack parses on one runtime and not
    // the other, or parses and then cannot be serialised: either way the client's input.
    if (tooDeep(err)) throw new BadRequest(JSON_TOO_DEEP);
    throw err;
  }
}

const JSON_TOO_DEEP = "request body is JSON nested too deeply";
const tooDeep = (err: unknown) => err instanceof RangeError;

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
