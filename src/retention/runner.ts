// The background pass (notes/retention.md): every RETENTION_INTERVAL_MS each instance
// claims due streams (store/streams/retention.ts claimDue: SKIP LOCKED, then a lease in the row),
// applies the stricter of the stream's own and the operator's policy in small
// transactions, and puts each stream back on the due list. The state lives in the rows,
// so a restart, or another instance, simply carries on.
import { hasPolicy, stricter } from "../protocol/retention.ts";
import type { Db } from "../store/driver/db.ts";
import {
  adoptRuleStreams,
  claimDue,
  databaseNow,
  type DueStream,
  finishPass,
  removeBelow,
  removeRows,
  retentionCut,
  supersededRows,
} from "../store/streams/retention.ts";
import { retentionBytesRemoved, retentionLag, retentionPasses, retentionPassSeconds, retentionRowsRemoved } from "../observability/retention.ts";
import type { RetentionRules } from "./rules.ts";

export interface RetentionOptions {
  intervalMs: number;
  deleteGraceMs: number;
  /** Rows per transaction: bounds how long one delete holds its locks. */
  batchRows?: number;
  /** Streams claimed per query. */
  claimStreams?: number;
  /**
   * How long a claimed stream stays off the due list if its instance dies mid-pass: 20
   * intervals, between 1 and 30 s. A pass that runs longer may meet a second one on the
   * same stream; their batches still take turns (advisory lock) and delete nothing twice.
   */
  leaseMs?: number;
}

export const RETENTION_DEFAULTS = { batchRows: 500, claimStreams: 16 };
const leaseFor = (intervalMs: number) => Math.min(30_000, Math.max(1_000, intervalMs * 20));

export interface PassResult {
  streams: number;
  rows: number;
  bytes: number;
}

export class RetentionRunner {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  /** Streams up to this id have been matched against the operator's rules. */
  private adoptedUpTo = 0;

  constructor(
    private readonly db: Db,
    private readonly rules: RetentionRules,
    private readonly opts: RetentionOptions,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  start(): void {
    if (this.opts.intervalMs <= 0) return;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.pass().catch(this.onError).finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: every due stream, a claim of a few at a time, until none is due. */
  async pass(): Promise<PassResult> {
    const started = performance.now();
    const total: PassResult = { streams: 0, rows: 0, bytes: 0 };
    let lag = 0;
    try {
      if (!this.rules.empty) this.adoptedUpTo = await adoptRuleStreams(this.db, this.rules.regexes, this.adoptedUpTo);
      const dueBy = await databaseNow(this.db);
      for (;;) {
        if (this.stopped) break;
        const due = await claimDue(this.db, this.opts.claimStreams ?? RETENTION_DEFAULTS.claimStreams, this.opts.leaseMs ?? leaseFor(this.opts.intervalMs), dueBy);
        if (due.length === 0) break;
        for (const s of due) {
          const r = await this.applyPolicy(s);
          total.streams++;
          total.rows += r.rows;
          total.bytes += r.bytes;
          lag += r.lag;
        }
      }
      retentionPasses.inc({ result: "ok" });
      retentionLag.set(lag);
      return total;
    } catch (err) {
      retentionPasses.inc({ result: "error" });
      throw err;
    } finally {
      retentionPassSeconds.observe((performance.now() - started) / 1000);
    }
  }

  private async applyPolicy(s: DueStream): Promise<PassResult & { lag: number }> {
    const policy = stricter(s.own, this.rules.policyFor(s.path));
    const out = { streams: 1, rows: 0, bytes: 0, lag: 0 };
    if (!hasPolicy(policy)) {
      await finishPass(this.db, s.id, null);
      return out;
    }
    const batch = this.opts.batchRows ?? RETENTION_DEFAULTS.batchRows;
    if (policy.maxAgeSeconds !== null || policy.maxBytes !== null) {
      const cut = await retentionCut(this.db, s, policy);
      let lo = Math.max(s.earliest, s.forkOffset ?? 0);
      while (lo < cut && !this.stopped) {
        const step = await removeBelow(this.db, s.id, lo, cut, batch);
        if (!step) break; // another instance is on this stream right now
        this.count("retention", step.removed.rows, step.removed.bytes, out);
        lo = step.earliest;
        if (step.done) break;
      }
      out.lag += Math.max(0, cut - lo);
    }
    if (policy.compaction === "state" && s.isJson) {
      const lo = Math.max(s.earliest, s.forkOffset ?? 0);
      const superseded = await supersededRows(this.db, s.id, lo, this.opts.deleteGraceMs);
      for (let i = 0; i < superseded.length && !this.stopped; i += batch) {
        const removed = await removeRows(this.db, s.id, superseded.slice(i, i + batch));
        if (!removed) {
          out.lag += superseded.length - i;
          break;
        }
        this.count("compaction", removed.rows, removed.bytes, out);
      }
    }
    await finishPass(this.db, s.id, this.opts.intervalMs);
    return out;
  }

  private count(reason: "retention" | "compaction", rows: number, bytes: number, out: PassResult): void {
    retentionRowsRemoved.inc({ reason }, rows);
    retentionBytesRemoved.inc({ reason }, bytes);
    out.rows += rows;
    out.bytes += bytes;
  }
}
