// Offsets are "<16-digit generation>_<16-digit position>", zero-padded so lexicographic
// order is position order (PROTOCOL 8). A position counts bytes for binary streams and
// messages for JSON streams. The generation is always 0 today; it leaves room to
// renumber storage later. The sentinels -1 and now are never minted.

const GENERATION = "0000000000000000";
const OFFSET_RE = /^0{16}_\d{16}$/;

export type RequestedOffset = { kind: "start" } | { kind: "now" } | { kind: "position"; position: number };

export function formatOffset(position: number): string {
  return `${GENERATION}_${String(position).padStart(16, "0")}`;
}

/** True for offsets of the shape this server mints; the position may still be past the tail. */
export function isOffsetToken(value: string): boolean {
  return /^\d{16}_\d{16}$/.test(value);
}

/** The position an offset names; beyond-reach values (other generations) become +Infinity. */
export function offsetPosition(value: string): number {
  return OFFSET_RE.test(value) ? Number(value.slice(17)) : Number.POSITIVE_INFINITY;
}

/** Parses a client-supplied offset; returns undefined for anything malformed. */
export function parseOffset(value: string | null | undefined): RequestedOffset | undefined {
  if (value === null || value === undefined || value === "-1") return { kind: "start" };
  if (value === "now") return { kind: "now" };
  if (!isOffsetToken(value)) return undefined;
  return { kind: "position", position: offsetPosition(value) };
}
