// Byte helpers shared by every layer.

/** Joins parts into one buffer (a single part is returned as is, not copied). */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Reads a body up to `maxBytes`. A body that goes past it is cancelled there (never held
 * whole) and comes back as what was read before the chunk that crossed, with `complete` false.
 */
export async function readAtMost(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<{ bytes: Uint8Array; complete: boolean }> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: concatBytes(parts), complete: true };
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return { bytes: concatBytes(parts), complete: false };
    }
    parts.push(value);
  }
}

/** Reads a body of a known size into one buffer of that size; throws unless exactly that much arrives. */
export async function readExactly(body: ReadableStream<Uint8Array>, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      if (at !== size) throw new Error(`body of ${at} bytes, not the declared ${size}`);
      return out;
    }
    if (at + value.byteLength > size) {
      await reader.cancel().catch(() => {});
      throw new Error(`body longer than its declared ${size} bytes`);
    }
    out.set(value, at);
    at += value.byteLength;
  }
}
