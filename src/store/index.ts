// The store: the only module the HTTP layer talks to for data. Everything SQL lives
// under store/; this facade binds it to one database, schema and notification channel.
import type { AppendOutcome, AppendRequest } from "./streams/append.ts";
import { APPEND_DEFAULTS, Appender, type AppendObserver } from "./streams/appender.ts";
import {
  describeSubscription,
  type LinkPageQuery,
  listSubscriptions,
  type SubscriptionLink,
  type SubscriptionListQuery,
  type SubscriptionSummary,
} from "./admin/subscriptions.ts";
import { describeStream, type ListQuery, listStreams, type StreamDetail, type StreamSummary } from "./admin/streams.ts";
import { loadForkChain, readUnits, type ReadResult, segmentsFor } from "./streams/chunks.ts";
import { type Change, notifyChannel } from "./streams/change.ts";
import type { Db } from "./driver/db.ts";
import type { StreamRecord } from "./streams/records.ts";
import { StandbyReads } from "./streams/standby-reads.ts";
import { warmConnection } from "./streams/warm-up.ts";
import { assertRetained } from "./streams/retention.ts";
import {
  type CreateOutcome,
  type CreateParams,
  createStream,
  deleteStream,
  findStream,
  findStreamById,
  sweepExpired,
  touchStream,
} from "./streams/streams.ts";

/** Group commit settings; each defaults to APPEND_DEFAULTS (store/streams/appender.ts). */
export interface StoreOptions {
  appendBatchMax?: number;
  appendConcurrency?: number;
  /** Appends waiting before a further group goes in flight beside a running one. */
  appendOverlapMin?: number;
  /** Deepest fork chain a fork may extend (MAX_FORK_DEPTH_DEFAULT in store/streams/streams.ts). */
  maxForkDepth?: number;
  /** Hot standbys for catch-up reads (store/streams/standby-reads.ts); the primary serves the rest. */
  standbys?: Db[];
}

export class Store {
  readonly channel: string;
  private readonly appender: Appender;
  /** Catch-up reads from standbys, when there are any. */
  readonly standbyReads?: StandbyReads;

  constructor(
    readonly db: Db,
    private readonly opts: StoreOptions = {},
  ) {
    this.channel = notifyChannel(db.schema);
    if (opts.standbys?.length) this.standbyReads = new StandbyReads(db, opts.standbys);
    // PGlite has a single connection: one group at a time.
    const concurrency = db.kind === "pglite" ? 1 : (opts.appendConcurrency ?? APPEND_DEFAULTS.concurrency);
    this.appender = new Appender(
      db,
      this.channel,
      opts.appendBatchMax ?? APPEND_DEFAULTS.batchMax,
      concurrency,
      opts.appendOverlapMin ?? APPEND_DEFAULTS.overlapMin,
    );
  }

  find(path: string): Promise<StreamRecord | undefined> {
    return findStream(this.db, path);
  }

  findById(id: number): Promise<StreamRecord | undefined> {
    return findStreamById(this.db, id);
  }

  create(params: CreateParams): Promise<CreateOutcome> {
    return createStream(this.db, params, this.opts.maxForkDepth);
  }

  append(req: AppendRequest): Promise<AppendOutcome> {
    return this.appender.append(req);
  }

  /**
   * A change hook (see server.ts): feeds change notifications to the append path, so state
   * remembered from this instance's last commit is dropped as soon as another instance
   * moves the stream.
   */
  applyChange(change: Change): void {
    this.appender.applyChange(change);
  }

  delete(path: string): Promise<void> {
    this.appender.forget(path);
    return deleteStream(this.db, this.channel, path);
  }

  touch(stream: StreamRecord): Promise<void> {
    return touchStream(this.db, stream);
  }

  /** Reads stored units from `from`, stitching fork chains, up to about `maxBytes`. */
  async read(stream: StreamRecord, from: number, maxBytes: number): Promise<ReadResult> {
    // Below the earliest retained offset: 410 before any chunk is read (PROTOCOL 5.6).
    assertRetained(stream, from);
    if (from >= stream.tail) return { units: [], starts: [], next: from };
    const chain = await loadForkChain(this.db, stream);
    const segments = segmentsFor(chain, stream.tail);
    // Nothing stored where a read looks: retention removed it since the row was read (410),
    // or compaction left a gap (the read steps over it).
    const onGap = async (at: number) => {
      const now = await findStreamById(this.db, stream.id);
      assertRetained(now ?? { ...stream, earliest: stream.tail }, at);
    };
    if (this.standbyReads) return this.standbyReads.read(segments, from, stream.tail, maxBytes, onGap);
    return readUnits(this.db, segments, from, maxBytes, onGap);
  }

  /** Admin listing: streams in path (byte) order after `after`, one index range. */
  list(query: ListQuery): Promise<StreamSummary[]> {
    return listStreams(this.db, query);
  }

  /** Admin view of one stream (soft-deleted included) with its forks and producers. */
  describe(path: string): Promise<StreamDetail | undefined> {
    return describeStream(this.db, path);
  }

  /** Admin listing of live subscriptions in id order, each with its first links. */
  listSubscriptions(query: SubscriptionListQuery): Promise<SubscriptionSummary[]> {
    return listSubscriptions(this.db, query);
  }

  /** Admin view of one live subscription with a page of its links. */
  describeSubscription(id: string, links: LinkPageQuery): Promise<(SubscriptionSummary & { linksBehind: number }) | undefined> {
    return describeSubscription(this.db, id, links);
  }

  /**
   * Opens every pool connection and prepares the hot statements on each (store/streams/
   * warm-up.ts); the instance reports ready only after this. Returns the connections warmed.
   */
  warmUp(): Promise<number> {
    return this.db.eachConnection((q) => warmConnection(q, this.channel));
  }

  sweep(limit?: number): Promise<number> {
    return sweepExpired(this.db, limit);
  }

  get appendStats(): Readonly<Appender["stats"]> {
    return this.appender.stats;
  }

  /** Attaches what watches group commit (the metrics, from server.ts). */
  observeAppends(observer: AppendObserver): void {
    this.appender.observer = observer;
  }

  /** Waits for queued appends to commit (graceful shutdown). */
  drained(): Promise<void> {
    return this.appender.drained();
  }
}

export { DatabaseUnavailable, isConnectionError } from "./driver/availability.ts";
export { APPEND_DEFAULTS } from "./streams/appender.ts";
export { MAX_FORK_DEPTH_DEFAULT, visible } from "./streams/streams.ts";
export { assertRetained } from "./streams/retention.ts";
export type { ReadResult };
export type { ListQuery, StreamDetail, StreamSummary };
export type { LinkPageQuery, SubscriptionLink, SubscriptionListQuery, SubscriptionSummary };
export type { StreamRecord, AppendOutcome, AppendRequest, CreateParams, CreateOutcome };
