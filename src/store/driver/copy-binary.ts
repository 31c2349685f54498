// Parser for Postgres' binary COPY format (header, then per tuple an int16 field count
// and int32-length-prefixed fields, then a -1 trailer). Used for bulk chunk reads, where
// it avoids the hex text encoding of bytea in the ordinary result format.
import { concatBytes } from "../../lib/bytes.ts";

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00];

type Tuple = (Uint8Array | null)[];

/** Splits a binary COPY payload into tuples of raw field values (null for SQL NULL). */
export function parseCopyBinary(buf: Uint8Array): Tuple[] {
  const rows: Tuple[] = [];
  const end = parseTuples(buf, headerLength(buf), rows);
  if (end !== "trailer") throw new Error("binary COPY payload ends without its trailer");
  return rows;
}

/**
 * The same over the payload as it arrived, one part per CopyData message. Postgres sends
 * each tuple in a message of its own, so the field values can be views into the parts
 * (no copy); a payload cut any other way falls back to joining the parts first.
 */
export function parseCopyBinaryParts(parts: Uint8Array[]): Tuple[] {
  if (parts.length === 0) throw new Error("empty binary COPY payload");
  const rows: Tuple[] = [];
  for (let i = 0; i < parts.length; i++) {
    const end = parseTuples(parts[i], i === 0 ? headerLength(parts[0]) : 0, rows);
    if (end === "trailer") return rows;
    if (end === "cut") return parseCopyBinary(concatBytes(parts));
  }
  throw new Error("binary COPY payload ends without its trailer");
}

function headerLength(buf: Uint8Array): number {
  if (buf.byteLength < 19 || SIGNATURE.some((b, i) => buf[i] !== b)) throw new Error("not a binary COPY payload");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return 19 + view.getUint32(15); // signature, flags, extension length, extension
}

/** Parses whole tuples from `at`; says whether it met the trailer, the end, or a cut tuple. */
function parseTuples(buf: Uint8Array, at: number, rows: Tuple[]): "trailer" | "end" | "cut" {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (at < buf.byteLength) {
    if (at + 2 > buf.byteLength) return "cut";
    const fields = view.getInt16(at);
    at += 2;
    if (fields === -1) return "trailer";
    const row: Tuple = [];
    for (let f = 0; f < fields; f++) {
      if (at + 4 > buf.byteLength) return "cut";
      const len = view.getInt32(at);
      at += 4;
      if (len === -1) {
        row.push(null);
        continue;
      }
      if (at + len > buf.byteLength) return "cut";
      row.push(buf.subarray(at, at + len));
      at += len;
    }
    rows.push(row);
  }
  return "end";
}

/** A big-endian int8 field as a number (positions stay far below 2^53). */
export function int8(field: Uint8Array | null): number {
  if (!field) throw new Error("unexpected NULL");
  return Number(new DataView(field.buffer, field.byteOffset, 8).getBigInt64(0));
}
