// Change notifications: the one home of their format. Every instance LISTENs on one
// channel per schema; appends notify "id:tail:closed" and, when the appended data is small,
// ":from:" followed by the new units in base64 separated by dots; a bare "id" means
// "changed, look it up" (deletes). Several changes travel in one notification, separated
// by commas. Postgres delivers a notification only once its transaction commits and in
// commit order, so a change is exactly the state that transaction committed.
// Here: the channel name, both payloads and the statements that send them, the size
// limits, the parser, and the rule for merging a notified state into a known one.
import { Buffer } from "node:buffer";
import type { SQL } from "drizzle-orm";
import { eachMessage } from "../../protocol/json.ts";
import { type Queryable, sql } from "../driver/db.ts";

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

/** The notification channel of one schema's streams (schema-prefixed, like river's topics). */
export const notifyChannel = (schema: string) => `ds_${schema}_streams`;

/**
 * Of two states of one stream, the later one: a tail only grows and a closed stream stays
 * closed, so merging keeps the larger tail and any close. Returns `known` itself when the
 * notified state adds nothing, so `mergeState(k, n) !== k` means "the stream moved".
 */
export function mergeState<T extends StreamState>(known: T, notified: StreamState): T {
  if (!movedPast(known, notified)) return known;
  return { ...known, tail: Math.max(known.tail, notified.tail), closed: known.closed || notified.closed };
}

/** Whether `notified` is past `known` (mergeState would return a new state), without building one. */
export function movedPast(known: StreamState, notified: StreamState): boolean {
  return notified.tail > known.tail || (notified.closed && !known.closed);
}

/** Whether two states of a stream are the same (a waiter's view against the table's). */
export const sameState = (a: StreamState, b: StreamState) => a.tail === b.tail && a.closed === b.closed;

/**
 * Appended data travels in the notification while its encoded form (base64 units and
 * separators, see inlineChars) stays within this many characters per stream and commit.
 */
export const NOTIFY_INLINE_CHARS = 2800;
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

/** What one commit appends to a stream, kept for its notification while it is small. */
export interface InlineData {
  from: number;
  units: Uint8Array[];
  chars: number;
}

/**
 * Adds an append's data (a binary body, or JSON messages as protocol/json.ts joins them) to
 * a stream's inline data; undefined once it no longer fits (readers query).
 */
export function addInline(d: InlineData | undefined, data: Uint8Array, isJson: boolean): InlineData | undefined {
  if (!d) return undefined;
  if (data.byteLength === 0) return d;
  // Stops as soon as the data no longer fits: a big append's messages are never all cut apart.
  for (const u of isJson ? eachMessage(data) : [data]) {
    d.units.push(u);
    d.chars += inlineChars(u);
    if (d.chars > NOTIFY_INLINE_CHARS) return undefined;
  }
  return d.chars > NOTIFY_INLINE_CHARS ? undefined : d;
}

export function formatChange(id: number, tail: number, closed: boolean, data?: { from: number; units: Uint8Array[] }): string {
  const head = `${id}:${tail}:${closed ? 1 : 0}`;
  if (!data) return head;
  const units = data.units.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("base64"));
  return `${head}:${data.from}:${units.join(".")}`;
}

/**
 * The changes of one append group, one per stream it wrote, in order. The first stream's
 * data always travels (within NOTIFY_INLINE_CHARS); the others share the group's budget.
 */
export function groupChanges(streams: { id: number; state: StreamState; appended?: InlineData }[]): string[] {
  let budget = NOTIFY_GROUP_INLINE_CHARS;
  return streams.map((w, i) => {
    const inline = w.appended && (i === 0 || w.appended.chars <= budget) ? w.appended : undefined;
    if (inline && i > 0) budget -= inline.chars;
    return formatChange(w.id, w.state.tail, w.state.closed, inline);
  });
}

/**
 * A scalar subquery for the append statement: notifies the changes of the streams in
 * `applied` (a subquery of ids), packed into notifications of about NOTIFY_PACK_CHARS.
 * `ids` and `changes` are array literals (pgArray) of the same length, or placeholders.
 */
export function notifyChangesSql(channel: unknown, ids: unknown, changes: unknown, applied: SQL): SQL {
  return sql`(SELECT count(*) FROM (
         SELECT pg_notify(${channel}, string_agg(y.change, ',' ORDER BY y.n))
         FROM (SELECT x.change, x.n, sum(length(x.change) + 1) OVER (ORDER BY x.n) / ${NOTIFY_PACK_CHARS}::int AS part
               FROM unnest(${ids}::int8[], ${changes}::text[])
                    WITH ORDINALITY AS x(id, change, n)
               WHERE x.id IN (${applied})) y
         GROUP BY y.part) z)`;
}

/** Tells every instance, once the transaction commits, that these streams changed (bare ids). */
export async function notifyChanged(q: Queryable, channel: string, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await q.rows(sql`SELECT pg_notify(${channel}, ${ids.join(",")})`);
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
