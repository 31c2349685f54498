// Resolves (Stream-Fork-Offset, Stream-Fork-Sub-Offset) to one position (PROTOCOL 4.2):
// the sub-offset counts bytes (binary) or messages (JSON) past the anchor and may not
// pass the end of the append that starts at the anchor.
import { BadRequest } from "../../protocol/errors.ts";
import { loadForkChain, segmentsFor } from "./chunks.ts";
import { type Queryable, sql } from "../driver/db.ts";
import type { StreamRecord } from "./records.ts";

export async function resolveForkPoint(q: Queryable, source: StreamRecord, anchor: number, sub: number): Promise<number> {
  if (sub === 0) return anchor;
  const segments = segmentsFor(await loadForkChain(q, source), source.tail);
  const seg = segments.find((s) => s.lo <= anchor && anchor < s.hi);
  if (!seg) throw new BadRequest("Stream-Fork-Sub-Offset points past the end of the source stream");
  // The end of the append holding the anchor: from a shared row's list of its appends' ends
  // (store/streams/chunks.ts, mergeAppends), else the row's batch_end.
  const rows = await q.rows<{ boundary: unknown }>(sql`
    SELECT coalesce((SELECT min(e) FROM unnest(append_ends) AS e WHERE e > ${anchor}), batch_end) AS boundary
    FROM ds_chunks WHERE stream_id = ${seg.streamId} AND start_pos <= ${anchor}
    ORDER BY start_pos DESC LIMIT 1`);
  const boundary = Math.min(rows.length ? Number(rows[0].boundary) : anchor, seg.hi);
  if (anchor + sub > boundary) throw new BadRequest("Stream-Fork-Sub-Offset passes the next data boundary");
  return anchor + sub;
}
