// Parser for Postgres' binary COPY format (header, then per tuple an int16 field count
// and int32-length-prefixed fields, then a -1 trailer). Used for bulk chunk reads, where
// it avoids the hex text encoding of bytea in the ordinary result format.

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00];

/** Splits a binary COPY payload into tuples of raw field values (null for SQL NULL). */
export function parseCopyBinary(buf: Uint8Array): (Uint8Array | null)[][] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 19 || SIGNATURE.some((b, i) => buf[i] !== b)) throw new Error("not a binary COPY payload");
  let at = 11 + 4;
  at += 4 + view.getUint32(at); // header extension
  const rows: (Uint8Array | null)[][] = [];
  for (;;) {
    const fields = view.getInt16(at);
    at += 2;
    if (fields === -1) return rows;
    const row: (Uint8Array | null)[] = [];
    for (let f = 0; f < fields; f++) {
      const len = view.getInt32(at);
      at += 4;
      if (len === -1) {
        row.push(null);
        continue;
      }
      row.push(buf.subarray(at, at + len));
      at += len;
    }
    rows.push(row);
  }
}

/** A big-endian int8 field as a number (positions stay far below 2^53). */
export function int8(field: Uint8Array | null): number {
  if (!field) throw new Error("unexpected NULL");
  return Number(new DataView(field.buffer, field.byteOffset, 8).getBigInt64(0));
}
