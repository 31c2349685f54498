// The bytes of SSE responses (PROTOCOL 5.8): data events (base64 for binary streams)
// followed by control events. Readers of the same range with the same control event send
// the same bytes, so the encoding is memoised per shared read result.
import { Buffer } from "node:buffer";
import { concatBytes } from "../lib/bytes.ts";
import { memo } from "../lib/memo.ts";
import { jsonArrayParts } from "./json.ts";
import { formatOffset } from "./offsets.ts";

/** Stored units read for a reader (store/streams/chunks.ts ReadResult), shared by readers of a range. */
interface Units {
  units: Uint8Array[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const KEEPALIVE = encoder.encode(": keep-alive\n\n");

const encoded = new WeakMap<Units, Map<string, Uint8Array>>();

/**
 * Formats one SSE event. Every payload line (split on CR, LF and CRLF) gets its own
 * data: field, so stream content can never forge an event boundary. SSE parsers drop one
 * space after "data:", so a line that starts with a space gets one more (others none, as the
 * conformance suite expects the bare form).
 */
export function sseEvent(event: string, payload: string): string {
  const lines = payload.split(/\r\n|\r|\n/);
  return `event: ${event}\n${lines.map((l) => (l.startsWith(" ") ? `data: ${l}` : `data:${l}`)).join("\n")}\n\n`;
}

/** The control event's JSON for a reader now at `next`. A closed stream carries no cursor. */
export function controlJson(next: number, upToDate: boolean, closed: boolean, cursor: number): string {
  const control: Record<string, unknown> = { streamNextOffset: formatOffset(next) };
  if (!closed) control.streamCursor = String(cursor);
  if (upToDate) control.upToDate = true;
  if (closed) control.streamClosed = true;
  return JSON.stringify(control);
}

/** A data event (when `result` has units) and its control event, as one buffer. */
export function eventBytes(result: Units | undefined, control: string, stream: { isJson: boolean }, text: boolean): Uint8Array {
  const controlEvent = sseEvent("control", control);
  if (!result || result.units.length === 0) return encoder.encode(controlEvent);
  const byControl = memo(encoded, result, () => new Map<string, Uint8Array>());
  let bytes = byControl.get(control);
  if (!bytes) {
    const data = concatBytes(stream.isJson ? jsonArrayParts(result.units) : result.units);
    bytes = encoder.encode(sseEvent("data", text ? decoder.decode(data) : toBase64(data)) + controlEvent);
    byControl.set(control, bytes);
  }
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  // Buffer exists on Bun and (through node compat) on Deno; it is far faster than btoa loops.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
