// Formatting helpers: sizes, times, offsets, and the hex + ASCII dump of binary data.

const nf = new Intl.NumberFormat("en-US");
export const count = (n) => nf.format(n);

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toTimeString().slice(0, 8)}`;
}

export function ago(iso) {
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function expiry(s) {
  if (s.ttlSeconds !== null) return `TTL ${count(s.ttlSeconds)} s (sliding)`;
  if (s.expiresAt) return `expires ${time(s.expiresAt)}`;
  return "never";
}

/** This server's offsets are "<generation>_<position>", both 16 digits. */
export const positionOf = (offset) => Number(String(offset).split("_")[1]);
export const offsetOf = (position) => `0000000000000000_${String(position).padStart(16, "0")}`;

export function fromBase64(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const hex2 = (b) => b.toString(16).padStart(2, "0");

/**
 * Lines of a hex dump: absolute position, 16 bytes in hex, and their printable ASCII.
 * Rows align on multiples of 16 in the stream, so dumps of neighbouring pages line up.
 */
export function hexLines(data, start) {
  const lines = [];
  let i = 0;
  while (i < data.length) {
    const rowStart = start + i;
    const lead = rowStart % 16;
    const take = Math.min(16 - lead, data.length - i);
    const row = data.subarray(i, i + take);
    const hex = [...Array(lead).fill("  "), ...Array.from(row, hex2)];
    while (hex.length < 16) hex.push("  ");
    const ascii = " ".repeat(lead) + Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${(rowStart - lead).toString(16).padStart(8, "0")}  ${hex.slice(0, 8).join(" ")}  ${hex.slice(8).join(" ")}  |${ascii.padEnd(16)}|`);
    i += take;
  }
  return lines;
}

/** JSON text pretty-printed; the raw text when it does not parse (it always should). */
export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A stored (URL-encoded) name as people read it; as stored when it does not decode. */
export function readable(name) {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
