// Stored data: one chunk row per binary append or per JSON message, addressed by
// position. Reads stitch a fork's inherited range and its own range in one offset space.
import { concatBytes } from "../../lib/bytes.ts";
import { type JsonMessages, MESSAGE_SEPARATOR } from "../../protocol/json.ts";
import { type Db, type Queryable, sql } from "../driver/db.ts";
import { int8, parseCopyBinaryParts } from "../driver/copy-binary.ts";
import { pgArray } from "../driver/pg-array.ts";

export interface ChunkRow {
  streamId: number;
  start: number;
  end: number;
  batchEnd: number;
  data: Uint8Array;
  /** Where each append of a shared row ends (mergeAppends); absent for a row of one append. */
  appendEnds?: number[];
}

/** The chunk row of a binary append of `data` at `tail`. */
export function binaryChunk(streamId: number, tail: number, data: Uint8Array): ChunkRow {
  const end = tail + data.byteLength;
  return { streamId, start: tail, end, batchEnd: end, data };
}

/**
 * A JSON append: its messages become one row each (positions start, start + 1, ...), all
 * with the append's end as batch_end, but travel to the database as they came from the
 * body split (protocol/json.ts): one buffer, cut apart in SQL, never a JS object per row.
 */
export interface JsonRun extends JsonMessages {
  streamId: number;
  start: number;
}

/**
 * Largest row that small binary appends are merged into: below the size at which Postgres
 * starts compressing and moving values out of line (TOAST, about 2 kB per row).
 */
export const MERGED_ROW_BYTES = 1900;

/**
 * A binary stream's rows of one group, in order, with runs of small contiguous appends
 * merged into shared rows of up to MERGED_ROW_BYTES. Each shared row keeps its appends'
 * ends; reads cut rows at any position already (forks), so readers see the same bytes.
 * On a hot stream this inserts 2 rows instead of 28 for 28 appends of 100 bytes.
 */
export function mergeAppends(rows: ChunkRow[], maxBytes = MERGED_ROW_BYTES): ChunkRow[] {
  if (rows.length < 2) return rows; // most streams of a group busy over many streams
  const out: ChunkRow[] = [];
  let run: ChunkRow[] = [];
  let bytes = 0;
  const flush = () => {
    if (run.length === 1) out.push(run[0]);
    if (run.length > 1) {
      const last = run[run.length - 1];
      out.push({
        streamId: last.streamId,
        start: run[0].start,
        end: last.end,
        batchEnd: last.end,
        data: concatBytes(run.map((r) => r.data)),
        appendEnds: run.flatMap((r) => r.appendEnds ?? [r.end]),
      });
    }
    run = [];
    bytes = 0;
  };
  for (const r of rows) {
    const prev = run[run.length - 1];
    if (prev && (prev.end !== r.start || prev.streamId !== r.streamId || bytes + r.data.byteLength > maxBytes)) flush();
    run.push(r);
    bytes += r.data.byteLength;
  }
  flush();
  return out;
}

/** The parameters of the chunk INSERT: the bytes as one bytea, positions as array literals. */
export interface ChunkColumns<V = unknown> {
  data: V;
  sids: V;
  starts: V;
  ends: V;
  batchEnds: V;
  offsets: V;
  lengths: V;
  /** Per row: its appends' ends as "e1,e2,..." (a shared row), or NULL. */
  appendEnds: V;
}

export function chunkColumns(rows: ChunkRow[]): ChunkColumns<string | Uint8Array> {
  const offsets: number[] = [];
  let at = 1; // substring() counts from 1
  for (const r of rows) {
    offsets.push(at);
    at += r.data.byteLength;
  }
  return {
    data: concatBytes(rows.map((r) => r.data)),
    sids: pgArray(rows.map((r) => r.streamId)),
    starts: pgArray(rows.map((r) => r.start)),
    ends: pgArray(rows.map((r) => r.end)),
    batchEnds: pgArray(rows.map((r) => r.batchEnd)),
    offsets: pgArray(offsets),
    lengths: pgArray(rows.map((r) => r.data.byteLength)),
    appendEnds: pgArray(rows.map((r) => (r.appendEnds ? r.appendEnds.join(",") : null))),
  };
}

/**
 * The INSERT for many chunk rows as one statement of constant text: the bytes travel as
 * one bytea parameter and are cut apart in SQL, the positions as arrays. The columns are
 * values (chunkColumns) or placeholders of a statement rendered once (store/streams/append.ts).
 */
export function insertChunksSql(c: ChunkColumns, where = sql`true`) {
  return sql`INSERT INTO ds_chunks (stream_id, start_pos, end_pos, batch_end, data, append_ends)
    SELECT sid, s, e, b, substring(${c.data}::bytea FROM o FOR n), string_to_array(ae, ',')::int8[]
    FROM unnest(${c.sids}::int8[], ${c.starts}::int8[], ${c.ends}::int8[], ${c.batchEnds}::int8[],
                ${c.offsets}::int4[], ${c.lengths}::int4[], ${c.appendEnds}::text[]) AS t(sid, s, e, b, o, n, ae)
    WHERE ${where}`;
}

export async function insertChunks(q: Queryable, rows: ChunkRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.rows(insertChunksSql(chunkColumns(rows)));
}

/** Between two runs in JsonColumns.data (like the newline, never raw in compact JSON). */
const RUN_SEPARATOR = 0x1e;
const RUN_SEPARATOR_BYTES = new Uint8Array([RUN_SEPARATOR]);

/** The parameters of the JSON rows' INSERT: every run's messages in one bytea, and per run its stream and positions. */
export interface JsonColumns<V = unknown> {
  data: V;
  sids: V;
  starts: V;
  batchEnds: V;
}

export function jsonColumns(runs: JsonRun[]): JsonColumns<string | Uint8Array> {
  // One run (a big append is alone in its group) goes as it is: no copy of its bytes.
  const parts: Uint8Array[] = [];
  runs.forEach((r, i) => {
    if (i > 0) parts.push(RUN_SEPARATOR_BYTES);
    parts.push(r.data);
  });
  return {
    data: concatBytes(parts),
    sids: pgArray(runs.map((r) => r.streamId)),
    starts: pgArray(runs.map((r) => r.start)),
    batchEnds: pgArray(runs.map((r) => r.start + r.count)),
  };
}

/**
 * The INSERT of JSON runs (jsonColumns): the bytea is cut into runs at RUN_SEPARATOR and
 * each run into messages at the newline, in SQL. Postgres splits text, not bytea, so the
 * bytes go through the 'escape' text form, which keeps every byte below 0x80 but NUL and
 * backslash as it is (so both separators too) and whatever the database's encoding.
 * Message i (from 1) of a run starting at s is the row [s + i - 1, s + i).
 */
export function insertJsonSql(c: JsonColumns, where = sql`true`) {
  return sql`INSERT INTO ds_chunks (stream_id, start_pos, end_pos, batch_end, data)
    SELECT r.sid, r.s + m.i - 1, r.s + m.i, r.b, decode(m.msg, 'escape')
    FROM unnest(${c.sids}::int8[], ${c.starts}::int8[], ${c.batchEnds}::int8[]) WITH ORDINALITY AS r(sid, s, b, n)
    JOIN string_to_table(encode(${c.data}::bytea, 'escape'), chr(${sql.raw(String(RUN_SEPARATOR))})) WITH ORDINALITY AS t(run, n) ON t.n = r.n
    CROSS JOIN LATERAL string_to_table(t.run, chr(${sql.raw(String(MESSAGE_SEPARATOR))})) WITH ORDINALITY AS m(msg, i)
    WHERE ${where}`;
}

export async function insertJson(q: Queryable, runs: JsonRun[]): Promise<void> {
  if (runs.length === 0) return;
  await q.rows(insertJsonSql(jsonColumns(runs)));
}

/** A piece of a stream's offset space that lives in one stream's own chunks. */
export interface Segment {
  streamId: number;
  lo: number;
  hi: number;
}

export interface ForkLink {
  id: number;
  forkSource: number | null;
  forkOffset: number | null;
}

/** Loads the fork chain of a stream, nearest first (itself included). */
export async function loadForkChain(q: Queryable, stream: ForkLink): Promise<ForkLink[]> {
  if (stream.forkSource === null) return [stream];
  const rows = await q.rows<Record<string, unknown>>(sql`
    WITH RECURSIVE chain AS (
      SELECT id, fork_source, fork_offset, 0 AS depth FROM ds_streams WHERE id = ${stream.forkSource}
      UNION ALL
      SELECT s.id, s.fork_source, s.fork_offset, c.depth + 1 FROM ds_streams s JOIN chain c ON s.id = c.fork_source
    ) SELECT id, fork_source, fork_offset FROM chain ORDER BY depth`);
  return [
    stream,
    ...rows.map((r) => ({
      id: Number(r.id),
      forkSource: r.fork_source === null ? null : Number(r.fork_source),
      forkOffset: r.fork_offset === null ? null : Number(r.fork_offset),
    })),
  ];
}

/** Splits [0, tail) into the segments each stream of the chain owns, in position order. */
export function segmentsFor(chain: ForkLink[], tail: number): Segment[] {
  const segments: Segment[] = [];
  let hi = tail;
  for (const link of chain) {
    const lo = link.forkOffset ?? 0;
    if (hi > lo) segments.unshift({ streamId: link.id, lo, hi });
    hi = Math.min(hi, lo);
    if (link.forkSource === null) break;
  }
  return segments;
}

export interface ReadResult {
  /** Stored units in order, already trimmed to the requested range. */
  units: Uint8Array[];
  /** Where each unit starts (store reads): compaction leaves gaps between a JSON stream's messages. */
  starts?: number[];
  next: number;
}

const ROWS_PER_QUERY = 4096;

interface RangeRow {
  start: number;
  end: number;
  data: Uint8Array;
}

/**
 * The chunk rows of one segment from `lo`, up to about `budget` bytes (always at least
 * one row). The running byte total is computed by Postgres from octet_length, which reads
 * no TOAST data, so rows past the budget are never fetched.
 */
async function fetchRange(q: Queryable & Pick<Db, "copyOut">, seg: Segment, lo: number, budget: number): Promise<RangeRow[]> {
  // Integers only (validated), so the same text can be inlined into COPY, which takes no parameters.
  for (const n of [seg.streamId, seg.hi, lo, budget]) {
    if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  }
  const n = (v: number) => sql.raw(String(v));
  const select = sql`SELECT start_pos, end_pos, data FROM (
      SELECT start_pos, end_pos, data,
             sum(octet_length(data)) OVER (ORDER BY start_pos ROWS UNBOUNDED PRECEDING) - octet_length(data) AS before
      FROM (
        SELECT start_pos, end_pos, data FROM ds_chunks
        WHERE stream_id = ${n(seg.streamId)}
          AND start_pos >= (SELECT coalesce(max(start_pos), 0) FROM ds_chunks
                            WHERE stream_id = ${n(seg.streamId)} AND start_pos <= ${n(lo)})
          AND start_pos < ${n(seg.hi)}
        ORDER BY start_pos LIMIT ${n(ROWS_PER_QUERY)}
      ) c
    ) w WHERE before < ${n(budget)} ORDER BY start_pos`;
  if (q.copyOut) {
    const payload = await q.copyOut(sql`COPY (${select}) TO STDOUT (FORMAT binary)`);
    return parseCopyBinaryParts(payload).map(([s, e, d]) => ({ start: int8(s), end: int8(e), data: d! }));
  }
  const rows = await q.rows<{ start_pos: unknown; end_pos: unknown; data: Uint8Array }>(select);
  return rows.map((r) => ({ start: Number(r.start_pos), end: Number(r.end_pos), data: r.data }));
}

/**
 * Reads units from position `from` up to `tail`, stopping once `maxBytes` is reached
 * (always at least one unit, so a huge append is still readable).
 */
export async function readUnits(
  q: Queryable & Pick<Db, "copyOut">,
  segments: Segment[],
  from: number,
  maxBytes: number,
  /**
   * Called when nothing is stored at a position being read: retention may have removed it
   * since the stream row was read (then this throws 410), or compaction left a gap there
   * (then the read goes on with the next stored row). Never silently skips removed data.
   * "stop" ends the read there with what it has (a standby cannot tell a gap from rows it
   * has not replayed yet: standby-reads.ts).
   */
  onGap: (at: number) => Promise<void | "stop"> = async () => {},
): Promise<ReadResult> {
  const units: Uint8Array[] = [];
  const starts: number[] = [];
  let next = from;
  let budget = maxBytes;
  for (const seg of segments) {
    if (seg.hi <= next) continue;
    while (next < seg.hi && budget > 0) {
      const lo = Math.max(next, seg.lo);
      const rows = await fetchRange(q, seg, lo, budget);
      const first = rows.find((r) => r.end > lo);
      if ((first?.start ?? seg.hi) > lo) {
        if ((await onGap(lo)) === "stop") return { units, starts, next };
        if (!first) {
          // Compaction removed everything from here to the segment's end: read on past it.
          next = seg.hi;
          continue;
        }
      }
      const before = next;
      for (const r of rows) {
        const { start, end } = r;
        if (end <= lo) continue;
        let data = r.data;
        // Trim a chunk that straddles the range (fork points inside a binary append).
        if (start < lo || end > seg.hi) {
          data = data.subarray(Math.max(0, lo - start), data.byteLength - Math.max(0, end - seg.hi));
        }
        units.push(data);
        starts.push(Math.max(start, lo));
        budget -= data.byteLength;
        next = Math.min(end, seg.hi);
        if (budget <= 0) break;
      }
      if (next === before) break; // nothing stored past `next` in this segment
    }
    if (budget <= 0) break;
  }
  return { units, starts, next };
}
