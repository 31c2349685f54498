// What a change notification says about one stream, and its text form. Appends notify
// "id:tail:closed" and, when the appended data is small, ":from:" followed by the new
// units in base64 separated by dots; a bare "id" means "changed, look it up" (deletes).
// Several changes travel in one notification, separated by commas. Postgres delivers a
// notification only once its transaction commits and in commit order, so a change is
// exactly the state that transaction committed.
import { Buffer } from "node:buffer";

/** The part of a stream's state that appends and closes change. */
export interface StreamState {
  tail: number;
  closed: boolean;
}

export interface Change {
  id: number;
  /** The stream's state as of the notifying commit (absent for a bare id). */
  state?: StreamState;
  /** The units that commit appended at `from` (up to the new tail), when small enough. */
  data?: { from: number; units: Uint8Array[] };
}

/**
 * Appended data travels in the notification while its encoded form (base64 units and
 * separators, see inlineChars) stays within this many characters per stream and commit.
 */
export const NOTIFY_INLINE_CHARS = 2800;
/** The largest single unit that always travels inline (2,733 characters encoded). */
export const NOTIFY_DATA_MAX = 2048;
/**
 * Beyond its first stream, a commit inlines data for its streams, in order, until their
 * encoded data reaches this many characters; the rest notify state only and their readers
 * query. Busy instances (large groups) thus keep notifications small, while a quiet
 * stream's append, where latency shows, always travels inline.
 */
export const NOTIFY_GROUP_INLINE_CHARS = 1400;
/**
 * Changes are packed into one notification until it holds this many characters; with one
 * change at most NOTIFY_INLINE_CHARS plus a ~70-character head, a notification stays under
 * Postgres' limit of 8,000 bytes.
 */
export const NOTIFY_PACK_CHARS = 4000;

/** Characters one unit takes in a notification: base64 and a separator. */
export const inlineChars = (unit: Uint8Array) => 4 * Math.ceil(unit.byteLength / 3) + 1;

export function formatChange(id: number, tail: number, closed: boolean, data?: { from: number; units: Uint8Array[] }): string {
  const head = `${id}:${tail}:${closed ? 1 : 0}`;
  if (!data) return head;
  const units = data.units.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("base64"));
  return `${head}:${data.from}:${units.join(".")}`;
}

const DIGITS = /^\d{1,16}$/;

export function parseNotification(payload: string): Change[] {
  const out: Change[] = [];
  for (const part of payload.split(",")) {
    const [idText, tailText, closedText, fromText, unitsText] = part.split(":");
    const id = Number(idText);
    if (!DIGITS.test(idText) || !Number.isSafeInteger(id)) continue;
    const tail = Number(tailText);
    if (tailText === undefined || !DIGITS.test(tailText) || !Number.isSafeInteger(tail)) {
      out.push({ id });
      continue;
    }
    const change: Change = { id, state: { tail, closed: closedText === "1" } };
    if (fromText !== undefined && unitsText !== undefined && DIGITS.test(fromText) && Number(fromText) <= tail) {
      change.data = lazyData(Number(fromText), unitsText);
    }
    out.push(change);
  }
  return out;
}

/** Every instance hears every change; the units are decoded only if someone reads them. */
function lazyData(from: number, text: string): { from: number; units: Uint8Array[] } {
  let units: Uint8Array[] | undefined;
  return {
    from,
    get units() {
      return (units ??= text === "" ? [] : text.split(".").map((u) => new Uint8Array(Buffer.from(u, "base64"))));
    },
  };
}
