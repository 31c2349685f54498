// Group commit: appends that arrive while groups are in flight wait and share the next
// group, so the commit rate of Postgres no longer caps the append rate. A stream is in at
// most one in-flight group at a time, which keeps this instance's appends to a stream in
// arrival order and its optimistic writes free of self-inflicted conflicts.
import type { Change } from "./change.ts";
import { isConnectionError } from "../driver/availability.ts";
import type { Db } from "../driver/db.ts";
import { ClientGone } from "../../protocol/errors.ts";
import { type AppendOutcome, type AppendRequest, appendGroup, WriterCache } from "./append.ts";

/**
 * Group commit's defaults, the one source of them (config.ts uses these too). On Postgres a
 * group goes in flight as soon as overlapMin appends wait (and at the end of the event-loop
 * turn otherwise): small groups cost Postgres more per append, while starting one before a
 * burst of requests is fully parsed lets Postgres work while this thread parses the rest
 * (bench/README.md: 24,000-25,000 appends/s at 64 connections with 32, against about
 * 18,000 when groups waited for the end of the turn).
 */
export const APPEND_DEFAULTS = { batchMax: 256, concurrency: 2, overlapMin: 32 } as const;

interface Pending {
  req: AppendRequest;
  /** performance.now() when queued. */
  at: number;
  resolve: (v: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

/** What operators may watch of group commit; server.ts attaches the metrics (store/ imports none). */
export interface AppendObserver {
  /** A group starts: when each of its appends was queued, and now (performance.now()). */
  queueWait(queuedAt: number[], now: number): void;
  /** A group committed or failed: its size, its round trip in seconds, and whether it ran under row locks. */
  group(size: number, seconds: number, locked: boolean): void;
}

const UNOBSERVED: AppendObserver = { queueWait() {}, group() {} };

export class Appender {
  observer: AppendObserver = UNOBSERVED;
  private queue: Pending[] = [];
  /** The streams with queued appends: whether anything queued could go now, without a scan. */
  private queuedPaths = new Set<string>();
  private running = 0;
  private readonly busy = new Set<string>();
  private readonly writers = new WriterCache();
  private idle: (() => void)[] = [];
  private pumpScheduled = false;
  /** Counters for operators (/healthz) and tests. */
  readonly stats = { groups: 0, appends: 0, lockedRetries: 0 };

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly maxBatch: number,
    private readonly concurrency: number,
    private readonly overlapMin: number,
    private readonly maxBatchBytes = 16 * 1024 * 1024,
  ) {}

  append(req: AppendRequest): Promise<AppendOutcome> {
    if (req.signal?.aborted) return Promise.reject(new ClientGone());
    return new Promise((resolve, reject) => {
      this.queue.push({ req, at: performance.now(), resolve, reject });
      this.queuedPaths.add(req.path);
      // A burst of requests parsed in one event-loop turn need not wait for the whole
      // burst: once a group's worth waits, it goes now, and the database works on it
      // while this thread parses the rest of the burst.
      if (this.queue.length >= this.overlapMin && this.running < this.concurrency) this.pump();
      else this.schedulePump();
    });
  }

  /** Drops what this instance remembers of a stream (it was deleted or replaced). */
  forget(path: string): void {
    this.writers.forget(path);
  }

  /** A stream changed somewhere (a change notification); see WriterCache.applyChange. */
  applyChange(change: Change): void {
    this.writers.applyChange(change);
  }

  /** Resolves once every queued append has been committed or rejected. */
  drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /**
   * A group that does not fill up starts once this event-loop turn's I/O is handled
   * (setImmediate), not inside the request that queued: appends of the same turn share the
   * group, and a request its client has already abandoned is dropped before it is written.
   * (setTimeout(0) would wait a millisecond more, most of an append's latency at low
   * concurrency; it also gave Bun more time to report the close that follows a request
   * pipelined behind a pending one, whose append must then not be stored: README,
   * Reliability, says what that changes.)
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      // A further group in flight only for a queue worth it: small groups cost Postgres more.
      if (this.running > 0 && this.queue.length < this.overlapMin) return;
      // A hot stream's appends queue behind its group in flight; scanning them on every
      // arrival made each arrival cost O(queue): at 1,024 connections on one stream, 87
      // instead of 37 us of server CPU per append (bench/README.md, "Adopted").
      if (!this.anyTakeable()) return;
      const batch = this.take();
      if (batch.length === 0) return; // everything queued waits on a stream in flight
      const paths = new Set(batch.map((p) => p.req.path));
      for (const p of paths) this.busy.add(p);
      this.running++;
      this.run(batch).finally(() => {
        for (const p of paths) this.busy.delete(p);
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) this.idle.splice(0).forEach((r) => r());
      });
    }
  }

  /**
   * Takes queued appends, in order, whose streams are not in another in-flight group. Once
   * one append to a stream stays queued (the group is full), so do the later ones to it: a
   * smaller append behind a large one must not overtake it (a producer's seq would skip).
   */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    const held = new Set<string>();
    let bytes = 0;
    for (const p of this.queue) {
      if (p.req.signal?.aborted) {
        p.reject(new ClientGone());
        continue;
      }
      const size = p.req.body.byteLength;
      const fits = batch.length < this.maxBatch && (batch.length === 0 || bytes + size <= this.maxBatchBytes);
      if (fits && !held.has(p.req.path) && !this.busy.has(p.req.path)) {
        batch.push(p);
        bytes += size;
      } else {
        rest.push(p);
        held.add(p.req.path);
      }
    }
    this.queue = rest;
    this.queuedPaths = held;
    return batch;
  }

  /** Whether some queued append's stream is not in a group in flight (one look per stream queued). */
  private anyTakeable(): boolean {
    for (const path of this.queuedPaths) if (!this.busy.has(path)) return true;
    return false;
  }

  private async run(batch: Pending[], lock = false): Promise<void> {
    try {
      this.stats.groups++;
      this.stats.appends += batch.length;
      if (lock) this.stats.lockedRetries += batch.length;
      const started = performance.now();
      if (!lock) this.observer.queueWait(batch.map((p) => p.at), started);
      const results = await appendGroup(this.db, this.channel, batch.map((p) => p.req), lock, this.writers);
      this.observer.group(batch.length, (performance.now() - started) / 1000, lock);
      const retry: Pending[] = [];
      results.forEach((r, i) => {
        if ("retry" in r) retry.push(batch[i]);
        else if (r.ok) batch[i].resolve(r.value);
        else batch[i].reject(r.error);
      });
      // Another instance moved these streams between our read and write: redo them
      // under row locks, where nothing can move.
      if (retry.length > 0) await this.run(retry, true);
    } catch (err) {
      // Connection lost: the commit may or may not have happened, so nothing is retried
      // here (a plain append could be stored twice); each append gets the error (503) and
      // its client decides, safely so with an idempotent producer.
      if (batch.length === 1 || isConnectionError(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      // A database error fails the whole group; retry each append alone so one bad
      // append (or a transient error) does not fail its neighbours.
      for (const p of batch) await this.run([p], lock);
    }
  }
}
