// Appends, committed in groups. A group reads the state of the streams it touches,
// decides every append in arrival order with protocol/append-rules.ts, and then ONE
// statement writes chunks, stream state and producer state and notifies readers. That
// statement only applies a stream's writes if the stream still has the tail and closed
// state the decisions were based on (compare-and-set), so no row lock and no explicit
// transaction are needed: two round trips per group, and the statement's own commit is
// what every 2xx waits for. A stream whose state moved underneath (another instance
// appended) is retried by the caller under row locks, which always makes progress.
// After a group, the state it committed is remembered (WriterCache), so the next group on
// a busy stream skips the read: one round trip, still guarded by the compare-and-set.
import { type AppendDecision, type AppendInput, applyWrite, decideAppend, type WriterState } from "../../protocol/append-rules.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import type { ProducerState } from "../../protocol/producer.ts";
import type { SQL } from "drizzle-orm";
import { addInline, type Change, groupChanges, type InlineData, movedPast, notifyChangesSql, sameState, type StreamState } from "./change.ts";
import { binaryChunk, type ChunkColumns, chunkColumns, type ChunkRow, insertChunksSql, insertJsonSql, type JsonColumns, jsonColumns, type JsonRun, mergeAppends } from "./chunks.ts";
import { type Db, type Queryable, sql, statement } from "../driver/db.ts";
import { pgArray } from "../driver/pg-array.ts";
import { EXPIRED_SQL, STREAM_COLUMNS, type StreamRecord, toStreamRecord } from "./records.ts";
import { visible } from "./streams.ts";

export interface AppendRequest extends AppendInput {
  path: string;
  /**
   * Aborted when the client has gone away: an append not yet committed is then dropped
   * rather than stored without anyone told (a retry would store it twice).
   */
  signal?: AbortSignal;
}

export interface AppendOutcome {
  /** 200 for new data from a producer, 204 otherwise (PROTOCOL 5.2, 5.2.1). */
  status: 200 | 204;
  tail: number;
  closed: boolean;
  producer?: { epoch: number; seq: number };
}

/** Per append: settled, or `retry` when its stream changed between read and write. */
export type GroupResult = { ok: true; value: AppendOutcome } | { ok: false; error: unknown } | { retry: true };

interface StreamWork {
  record: StreamRecord;
  state: WriterState;
  touched: boolean;
  wrote: boolean;
  /** The chunk rows this group writes to a binary stream, in order. */
  chunks?: ChunkRow[];
  /** The appends this group writes to a JSON stream, in order. */
  runs?: JsonRun[];
  /** What this group appends to the stream, for the notification (until it is too big). */
  appended?: InlineData;
}

/**
 * Runs a group of appends. Optimistic by default (read, decide, compare-and-set write);
 * with `lock`, inside a transaction that locks the streams first, so nothing can move.
 */
export async function appendGroup(
  db: Db,
  channel: string,
  batch: AppendRequest[],
  lock = false,
  cache?: WriterCache,
): Promise<GroupResult[]> {
  const run = async (q: Queryable) => {
    const streams = await readStreams(q, batch, lock, lock ? undefined : cache);
    const producerRows = new Map<string, { streamId: number; id: string; state: ProducerState }>();
    const decided = batch.map((req): { path: string; result: GroupResult } => {
      const work = streams.get(req.path);
      try {
        const record = visible(work?.record);
        const w = work!;
        w.touched = true;
        const decision: AppendDecision = decideAppend(w.state, req);
        if (decision.kind === "noop") {
          return { path: req.path, result: { ok: true, value: outcome(204, w.state, req, decision.producerState) } };
        }
        if (decision.units > 0) {
          if (w.state.isJson) (w.runs ??= []).push({ streamId: record.id, start: w.state.tail, data: decision.data, count: decision.units });
          else (w.chunks ??= []).push(binaryChunk(record.id, w.state.tail, decision.data));
        }
        if (!w.wrote) w.appended = { from: w.state.tail, units: [], chars: 0 };
        w.appended = addInline(w.appended, decision.data, w.state.isJson);
        applyWrite(w.state, req, decision);
        w.wrote = true;
        if (decision.producer) {
          producerRows.set(`${record.id}\u0000${decision.producer.id}`, {
            streamId: record.id,
            id: decision.producer.id,
            state: decision.producer.next,
          });
        }
        const status = req.producer && decision.units > 0 ? 200 : 204;
        return { path: req.path, result: { ok: true, value: outcome(status, w.state, req, decision.producer?.next) } };
      } catch (error) {
        if (error instanceof ProtocolError) return { path: req.path, result: { ok: false, error } };
        throw error;
      }
    });
    // A binary stream's small appends share rows (mergeAppends); a JSON stream keeps one row per message.
    const chunks: ChunkRow[] = [];
    const runs: JsonRun[] = [];
    for (const w of streams.values()) {
      for (const r of w.chunks ? mergeAppends(w.chunks) : []) chunks.push(r);
      for (const r of w.runs ?? []) runs.push(r);
    }
    // From here our own commit's notification may come in before this group's answer does.
    for (const w of streams.values()) if (w.touched) held.push(w.record.id);
    cache?.hold(held);
    const applied = await writeGroup(q, channel, [...streams.values()], { chunks, runs }, [...producerRows.values()]);
    // Decisions on a stream whose compare-and-set failed were made on stale state.
    const results = decided.map(({ path, result }): GroupResult => {
      const w = streams.get(path);
      return w && w.touched && !applied.has(w.record.id) ? { retry: true as const } : result;
    });
    return { results, streams, applied };
  };
  // Inside a transaction the write is not committed until tx() resolves, and a COMMIT lost
  // with the connection leaves nothing stored: the cache must never run ahead of the
  // database, or the client's retry is answered "duplicate" for an append never stored.
  const paths = [...new Set(batch.map((b) => b.path))];
  const held: number[] = [];
  let done: Awaited<ReturnType<typeof run>>;
  try {
    done = lock ? await db.tx(run) : await run(db);
  } catch (err) {
    for (const path of paths) cache?.forget(path);
    cache?.release(held);
    throw err;
  }
  for (const [path, w] of done.streams) {
    if (!w.touched) continue;
    if (done.applied.has(w.record.id)) cache?.remember(path, w);
    else cache?.forget(path);
  }
  cache?.release(held);
  return done.results;
}

function outcome(status: 200 | 204, s: WriterState, req: AppendRequest, p?: ProducerState): AppendOutcome {
  return {
    status,
    tail: s.tail,
    closed: s.closed,
    producer: req.producer ? { epoch: p?.epoch ?? req.producer.epoch, seq: p?.lastSeq ?? req.producer.seq } : undefined,
  };
}

/** A notified state past any other: the stream was deleted or replaced. */
const GONE: StreamState = { tail: Infinity, closed: true };

/** What this instance last committed to a stream: the starting state of its next group. */
export class WriterCache {
  private readonly entries = new Map<string, { record: StreamRecord; state: WriterState }>();
  private readonly pathById = new Map<number, string>();
  /**
   * Streams whose group is being written, with the latest state notified for each meanwhile.
   * Our own commit's notification usually arrives before the group's answer is handled; it
   * is judged against the state the group commits (remember), not the one before it.
   */
  private readonly writing = new Map<number, StreamState | null>();

  constructor(private readonly maxEntries = 10_000, private readonly maxProducers = 1_000) {}

  /** A private copy of the remembered state, if it covers every producer the group names. */
  take(path: string, producerIds: string[]): StreamWork | undefined {
    const e = this.entries.get(path);
    if (!e || producerIds.some((id) => !e.state.producers.has(id))) return undefined;
    return { record: e.record, touched: false, wrote: false, state: { ...e.state, producers: new Map(e.state.producers) } };
  }

  /** The remembered state itself (read only), whatever producers it covers. */
  peek(path: string): { readonly record: StreamRecord; readonly state: WriterState } | undefined {
    return this.entries.get(path);
  }

  /** Marks streams as being written (see `writing`), until release. */
  hold(ids: readonly number[]): void {
    for (const id of ids) if (!this.writing.has(id)) this.writing.set(id, null);
  }

  release(ids: readonly number[]): void {
    for (const id of ids) this.writing.delete(id);
  }

  remember(path: string, w: StreamWork): void {
    if (w.state.producers.size > this.maxProducers) return this.forget(path);
    // Someone else moved the stream after our commit: read it next time.
    const seen = this.writing.get(w.record.id);
    if (seen && movedPast(w.state, seen)) return this.forget(path);
    if (this.entries.size >= this.maxEntries) {
      this.entries.clear();
      this.pathById.clear();
    }
    // The compare-and-set of the next group checks against the state committed now.
    this.entries.set(path, { record: { ...w.record, tail: w.state.tail, closed: w.state.closed }, state: w.state });
    this.pathById.set(w.record.id, path);
  }

  forget(path: string): void {
    const e = this.entries.get(path);
    if (e) this.pathById.delete(e.record.id);
    this.entries.delete(path);
  }

  /**
   * A change notification (store/streams/change.ts): when it shows that someone else moved the
   * stream past what we remember (another instance appended, closed or deleted it), the
   * entry goes, and the next group reads the row instead of losing its compare-and-set
   * and retrying under locks. While a group writes the stream, the notification is kept
   * for remember() instead: our own commit's usually arrives before the group's answer.
   */
  applyChange({ id, state }: Change): void {
    const seen = this.writing.get(id);
    if (seen !== undefined) {
      // Kept for remember(): the furthest state seen; a bare id (deleted) beats any.
      if (!state) this.writing.set(id, GONE);
      else if (seen === null || movedPast(seen, state)) this.writing.set(id, state);
      return;
    }
    const path = this.pathById.get(id);
    if (path === undefined) return;
    const e = this.entries.get(path);
    if (!e || e.record.id !== id) return void this.pathById.delete(id);
    if (!state || movedPast(e.state, state)) this.forget(path);
  }
}

/** Stream rows (and the producer state the group needs) in one statement, unless remembered. */
export async function readStreams(
  q: Queryable,
  batch: AppendRequest[],
  lock: boolean,
  cache: WriterCache | undefined,
): Promise<Map<string, StreamWork>> {
  const out = new Map<string, StreamWork>();
  const named = new Map<string, string[]>();
  for (const b of batch) {
    const ids = named.get(b.path) ?? [];
    if (b.producer) ids.push(b.producer.id);
    named.set(b.path, ids);
  }
  for (const [path, ids] of named) {
    const remembered = cache?.take(path, ids);
    if (remembered) out.set(path, remembered);
  }
  const paths = [...named.keys()].filter((p) => !out.has(p));
  if (paths.length === 0) return out;
  const producerIds = [...new Set(paths.flatMap((p) => named.get(p)!))];
  // Locking in id order keeps concurrent groups on other instances from deadlocking.
  const rows = await q.rows(
    sql`SELECT ${STREAM_COLUMNS},
      (SELECT coalesce(json_agg(json_build_array(p.producer_id, p.epoch, p.last_seq)), '[]')
         FROM ds_producers p WHERE p.stream_id = s.id AND p.producer_id = ANY(${pgArray(producerIds)}::text[])) AS producers
    FROM ds_streams s WHERE s.path = ANY(${pgArray(paths)}::text[])
    ORDER BY s.id ${lock ? sql`FOR UPDATE` : sql``}`,
    { prepare: true },
  );
  for (const r of rows) {
    const record = toStreamRecord(r);
    const raw = typeof r.producers === "string" ? JSON.parse(r.producers) : r.producers;
    // The row reads only the group's producers. Those this instance already knows stay known
    // while the stream is where it left it (every accepted producer append moves the tail
    // or closes the stream): otherwise a hot stream whose groups name different producers
    // would read the row for every group, each time forgetting the previous group's.
    const known = cache?.peek(record.path!);
    const same = known && known.record.id === record.id && sameState(known.state, record);
    const producers = new Map<string, ProducerState>(same ? known.state.producers : undefined);
    for (const [id, epoch, lastSeq] of raw as [string, unknown, unknown][]) producers.set(id, { epoch: Number(epoch), lastSeq: Number(lastSeq) });
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
        producers,
      },
    });
  }
  return out;
}

/** A placeholder of the group statement. */
const ph = (name: string) => sql.placeholder(name);

/** The JSON columns' placeholders, named as jsonColumns() names their values (with a "j"). */
const JSON_PLACEHOLDERS: JsonColumns = { data: ph("jData"), sids: ph("jSids"), starts: ph("jStarts"), batchEnds: ph("jBatchEnds") };

/** The chunk columns' placeholders, named as chunkColumns() names their values. */
const CHUNK_PLACEHOLDERS: ChunkColumns = {
  data: ph("data"),
  sids: ph("sids"),
  starts: ph("starts"),
  ends: ph("ends"),
  batchEnds: ph("batchEnds"),
  offsets: ph("offsets"),
  lengths: ph("lengths"),
  appendEnds: ph("appendEnds"),
};

/**
 * The group statement, of constant text: update each stream whose tail and closed state are
 * still what was read (and which has not expired meanwhile), then insert the chunks and
 * producer state of exactly those streams, and notify their readers of each one's change
 * (store/streams/change.ts: new tail and closed state, and the data when small). Postgres delivers
 * the notification only on commit. It comes in eight shapes (with or without binary chunks,
 * JSON messages and producer rows), each rendered to text once.
 */
function groupStatementSql(withChunks: boolean, withJson: boolean, withProducers: boolean): SQL {
  const chunkInsert = withChunks
    ? sql`, c AS (${insertChunksSql(CHUNK_PLACEHOLDERS, sql`sid IN (SELECT id FROM s)`)})`
    : sql``;
  const jsonInsert = withJson ? sql`, j AS (${insertJsonSql(JSON_PLACEHOLDERS, sql`r.sid IN (SELECT id FROM s)`)})` : sql``;
  const producerUpsert = withProducers
    ? sql`, p AS (INSERT INTO ds_producers (stream_id, producer_id, epoch, last_seq)
        SELECT * FROM unnest(${ph("pSids")}::int8[], ${ph("pIds")}::text[], ${ph("pEpochs")}::int8[], ${ph("pSeqs")}::int8[])
               AS y(sid, pid, epoch, seq)
        WHERE sid IN (SELECT id FROM s)
        ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq, updated_at = now())`
    : sql``;
  return sql`
    WITH s AS (
      UPDATE ds_streams t SET tail = v.tail, closed = v.closed, closed_by_id = v.cid, closed_by_epoch = v.cepoch,
             closed_by_seq = v.cseq, last_seq = v.last_seq,
             -- only TTL streams need the access time; leaving it alone keeps updates HOT
             last_access = CASE WHEN t.ttl_seconds IS NULL THEN t.last_access ELSE clock_timestamp() END
      FROM unnest(${ph("ids")}::int8[], ${ph("oldTails")}::int8[], ${ph("oldClosed")}::bool[], ${ph("tails")}::int8[],
                  ${ph("closed")}::bool[], ${ph("cids")}::text[], ${ph("cepochs")}::int8[], ${ph("cseqs")}::int8[],
                  ${ph("lastSeqs")}::text[])
           AS v(id, old_tail, old_closed, tail, closed, cid, cepoch, cseq, last_seq)
      -- v.id > 0 AND v.old_tail >= 0 hold for every row; they make the planner expect
      -- about one row from unnest, so it always walks v and looks each stream up by primary
      -- key. Without them, a young ds_streams without statistics gets a sequential scan
      -- joined against every group row (measured: 1.8k instead of 13.7k appends/s).
      WHERE v.id > 0 AND v.old_tail >= 0
        AND t.id = v.id AND t.tail = v.old_tail AND t.closed = v.old_closed
        AND t.deleted_at IS NULL AND t.path IS NOT NULL AND NOT ${EXPIRED_SQL("t")}
      RETURNING t.id)
    ${chunkInsert} ${jsonInsert} ${producerUpsert}
    SELECT array_to_string(array(SELECT id FROM s), ',') AS applied,
      ${notifyChangesSql(ph("channel"), ph("notifyIds"), ph("changes"), sql`SELECT id FROM s`)} AS notified`;
}

/** The eight shapes of the group statement, by [withChunks][withJson][withProducers]. */
export const GROUP_STATEMENTS = [false, true].map((c) => [false, true].map((j) => [false, true].map((p) => statement(groupStatementSql(c, j, p)))));

/** Writes a group (groupStatementSql). Returns the ids of the streams that were applied. */
async function writeGroup(
  q: Queryable,
  channel: string,
  streams: StreamWork[],
  { chunks, runs }: { chunks: ChunkRow[]; runs: JsonRun[] },
  producers: { streamId: number; id: string; state: ProducerState }[],
): Promise<Set<number>> {
  // Rows are locked in the order given; the same order (by id) on every instance keeps two
  // groups touching the same streams from deadlocking (Postgres aborts one after 1 s).
  const touched = streams.filter((w) => w.touched).sort((x, y) => x.record.id - y.record.id);
  if (touched.length === 0) return new Set();
  const st = touched.map((w) => w.state);
  const rec = touched.map((w) => w.record);
  const wrote = touched.filter((w) => w.wrote);
  const values: Record<string, unknown> = {
    ids: pgArray(rec.map((r) => r.id)),
    oldTails: pgArray(rec.map((r) => r.tail)),
    oldClosed: pgArray(rec.map((r) => r.closed)),
    tails: pgArray(st.map((s) => s.tail)),
    closed: pgArray(st.map((s) => s.closed)),
    cids: pgArray(st.map((s) => s.closedBy?.id ?? null)),
    cepochs: pgArray(st.map((s) => s.closedBy?.epoch ?? null)),
    cseqs: pgArray(st.map((s) => s.closedBy?.seq ?? null)),
    lastSeqs: pgArray(st.map((s) => s.lastSeq)),
    channel,
    notifyIds: pgArray(wrote.map((w) => w.record.id)),
    changes: pgArray(groupChanges(wrote.map((w) => ({ id: w.record.id, state: w.state, appended: w.appended })))),
  };
  if (chunks.length) Object.assign(values, chunkColumns(chunks));
  const j = runs.length ? jsonColumns(runs) : undefined;
  if (j) Object.assign(values, { jData: j.data, jSids: j.sids, jStarts: j.starts, jBatchEnds: j.batchEnds });
  if (producers.length) {
    values.pSids = pgArray(producers.map((p) => p.streamId));
    values.pIds = pgArray(producers.map((p) => p.id));
    values.pEpochs = pgArray(producers.map((p) => p.state.epoch));
    values.pSeqs = pgArray(producers.map((p) => p.state.lastSeq));
  }
  const rows = await q.run<{ applied: unknown }>(GROUP_STATEMENTS[chunks.length ? 1 : 0][runs.length ? 1 : 0][producers.length ? 1 : 0], values);
  const applied = String(rows[0]?.applied ?? "");
  return new Set(applied ? applied.split(",").map(Number) : []);
}
