// Resolves (Stream-Fork-Offset, Stream-Fork-Sub-Offset) to one position (PROTOCOL 4.2):
// the sub-offset counts bytes (binary) or messages (JSON) past the anchor and may not
// pass the end of the append that starts at the anchor.
import { BadRequest } from "../protocol/errors.ts";
import { loadForkChain, segmentsFor } from "./chunks.ts";
import { type Queryable, sql } from "./db.ts";
import type { StreamRecord } from "./records.ts";

export async function resolveForkPoint(q: Queryable, source: StreamRecord, anchor: number, sub: number): Promise<number> {
  if (sub === 0) return anchor;
  const segments = segmentsFor(await loadForkChain(q, source), source.tail);
  const seg = segments.find((s) => s.lo <= anchor && anchor < s.hi);
  if (!seg) throw new BadRequest("Stream-Fork-Sub-Offset points past the end of the source stream");
  const rows = await q.rows<{ batch_end: unknown; append_ends: unknown }>(sql`
    SELECT batch_end, append_ends FROM ds_chunks WHERE stream_id = ${seg.streamId} AND start_pos <= ${anchor}
    ORDER BY start_pos DESC LIMIT 1`);
  const end = rows.length ? appendEnd(rows[0], anchor) : anchor;
  const boundary = Math.min(end, seg.hi);
  if (anchor + sub > boundary) throw new BadRequest("Stream-Fork-Sub-Offset passes the next data boundary");
  return anchor + sub;
}

/** The end of the append holding `anchor`: from a shared row's list of ends, else its batch_end. */
function appendEnd(row: { batch_end: unknown; append_ends: unknown }, anchor: number): number {
  const ends = pgInt8Array(row.append_ends);
  return ends?.find((e) => e > anchor) ?? Number(row.batch_end);
}

/** An int8[] as the drivers return it: an array (postgres.js, PGlite) or its text form. */
function pgInt8Array(v: unknown): number[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(Number);
  return String(v).replace(/[{}]/g, "").split(",").filter(Boolean).map(Number);
}
