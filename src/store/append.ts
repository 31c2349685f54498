// Appends, committed in groups: every append waiting on this instance joins one
// transaction that locks the streams it touches, decides each append in order with
// protocol/append-rules.ts, writes chunks + stream state + producer state together
// and notifies readers. A 2xx is only sent after that transaction commits.
import { type AppendDecision, type AppendInput, applyWrite, decideAppend, type WriterState } from "../protocol/append-rules.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { ProducerState } from "../protocol/producer.ts";
import { chunkValues, type ChunkRow, unitsToChunks } from "./chunks.ts";
import { type Db, type Queryable, sql } from "./db.ts";
import { STREAM_COLUMNS, type StreamRecord, toStreamRecord } from "./records.ts";
import { notifyStream, visible } from "./streams.ts";

export interface AppendRequest extends AppendInput {
  path: string;
}

export interface AppendOutcome {
  /** 200 for new data from a producer, 204 otherwise (PROTOCOL 5.2, 5.2.1). */
  status: 200 | 204;
  tail: number;
  closed: boolean;
  producer?: { epoch: number; seq: number };
}

type Settled = { ok: true; value: AppendOutcome } | { ok: false; error: unknown };

interface StreamWork {
  record: StreamRecord;
  state: WriterState;
  touched: boolean;
  wrote: boolean;
}

/** Runs a group of appends in one transaction; per-append protocol errors don't abort the rest. */
export async function appendGroup(db: Db, channel: string, batch: AppendRequest[]): Promise<Settled[]> {
  return db.tx(async (q) => {
    const streams = await lockStreams(q, [...new Set(batch.map((b) => b.path))]);
    await loadProducers(q, streams, batch);
    const chunks: ChunkRow[] = [];
    const producerRows = new Map<string, { streamId: number; id: string; state: ProducerState }>();
    const results = batch.map((req): Settled => {
      try {
        const work = streams.get(req.path);
        const record = visible(work?.record);
        const w = work!;
        w.touched = true;
        const decision: AppendDecision = decideAppend(w.state, req);
        if (decision.kind === "noop") {
          return { ok: true, value: outcome(204, w.state, req, decision.producerState) };
        }
        chunks.push(...unitsToChunks(record.id, w.state.tail, w.state.isJson, decision.units));
        applyWrite(w.state, req, decision);
        w.wrote = true;
        if (decision.producer) {
          producerRows.set(`${record.id}\u0000${decision.producer.id}`, {
            streamId: record.id,
            id: decision.producer.id,
            state: decision.producer.next,
          });
        }
        const status = req.producer && decision.units.length > 0 ? 200 : 204;
        return { ok: true, value: outcome(status, w.state, req, decision.producer?.next) };
      } catch (error) {
        if (error instanceof ProtocolError) return { ok: false, error };
        throw error;
      }
    });
    await writeGroup(q, channel, [...streams.values()], chunks, [...producerRows.values()]);
    return results;
  });
}

function outcome(status: 200 | 204, s: WriterState, req: AppendRequest, p?: ProducerState): AppendOutcome {
  return {
    status,
    tail: s.tail,
    closed: s.closed,
    producer: req.producer ? { epoch: p?.epoch ?? req.producer.epoch, seq: p?.lastSeq ?? req.producer.seq } : undefined,
  };
}

async function lockStreams(q: Queryable, paths: string[]): Promise<Map<string, StreamWork>> {
  // Locking in id order keeps concurrent groups on other instances from deadlocking.
  const rows = await q.rows(sql`
    SELECT ${STREAM_COLUMNS} FROM ds_streams s
    WHERE s.path IN (${sql.join(paths.map((p) => sql`${p}`), sql`, `)})
    ORDER BY s.id FOR UPDATE`);
  const out = new Map<string, StreamWork>();
  for (const r of rows) {
    const record = toStreamRecord(r);
    out.set(record.path!, {
      record,
      touched: false,
      wrote: false,
      state: {
        contentType: record.contentType,
        isJson: record.isJson,
        tail: record.tail,
        closed: record.closed,
        closedBy: record.closedBy,
        lastSeq: record.lastSeq,
        producers: new Map(),
      },
    });
  }
  return out;
}

async function loadProducers(q: Queryable, streams: Map<string, StreamWork>, batch: AppendRequest[]): Promise<void> {
  const keys = new Map<string, { streamId: number; id: string }>();
  for (const req of batch) {
    const w = streams.get(req.path);
    if (w && req.producer) keys.set(`${w.record.id}\u0000${req.producer.id}`, { streamId: w.record.id, id: req.producer.id });
  }
  if (keys.size === 0) return;
  const rows = await q.rows<Record<string, unknown>>(sql`
    SELECT stream_id, producer_id, epoch, last_seq FROM ds_producers
    WHERE (stream_id, producer_id) IN (${sql.join([...keys.values()].map((k) => sql`(${k.streamId}::int8, ${k.id})`), sql`, `)})`);
  const byId = new Map([...streams.values()].map((w) => [w.record.id, w]));
  for (const r of rows) {
    byId.get(Number(r.stream_id))?.state.producers.set(r.producer_id as string, {
      epoch: Number(r.epoch),
      lastSeq: Number(r.last_seq),
    });
  }
}

/** One statement writes chunks, stream state and producer state, then notifies. */
async function writeGroup(
  q: Queryable,
  channel: string,
  streams: StreamWork[],
  chunks: ChunkRow[],
  producers: { streamId: number; id: string; state: ProducerState }[],
): Promise<void> {
  const touched = streams.filter((w) => w.touched && !w.record.expired);
  if (touched.length === 0) return;
  const parts = [];
  if (chunks.length) {
    parts.push(sql`c AS (INSERT INTO ds_chunks (stream_id, start_pos, end_pos, batch_end, data) VALUES ${chunkValues(chunks)})`);
  }
  const streamValues = sql.join(
    touched.map((w) => {
      const s = w.state;
      return sql`(${w.record.id}::int8, ${s.tail}::int8, ${s.closed}::bool, ${s.closedBy?.id ?? null}::text,
        ${s.closedBy?.epoch ?? null}::int8, ${s.closedBy?.seq ?? null}::int8, ${s.lastSeq}::text)`;
    }),
    sql`, `,
  );
  parts.push(sql`s AS (UPDATE ds_streams t SET tail = v.tail, closed = v.closed, closed_by_id = v.cid,
      closed_by_epoch = v.cepoch, closed_by_seq = v.cseq, last_seq = v.last_seq, last_access = clock_timestamp()
    FROM (VALUES ${streamValues}) AS v(id, tail, closed, cid, cepoch, cseq, last_seq) WHERE t.id = v.id)`);
  if (producers.length) {
    const values = sql.join(
      producers.map((p) => sql`(${p.streamId}::int8, ${p.id}::text, ${p.state.epoch}::int8, ${p.state.lastSeq}::int8)`),
      sql`, `,
    );
    parts.push(sql`p AS (INSERT INTO ds_producers (stream_id, producer_id, epoch, last_seq) VALUES ${values}
      ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq, updated_at = now())`);
  }
  const woken = touched.filter((w) => w.wrote).map((w) => w.record.id);
  const notify = woken.length ? sql`SELECT pg_notify(${channel}, ${woken.join(",")})` : sql`SELECT 1`;
  await q.rows(sql`WITH ${sql.join(parts, sql`, `)} ${notify}`);
}

export { notifyStream };
