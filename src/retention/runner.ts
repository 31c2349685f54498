// The background pass (README "Retention and compaction"): every RETENTION_INTERVAL_MS each
// instance claims the streams that are due (store/streams/retention.ts claimDue: SKIP LOCKED on
// their schedule rows, then a lease), applies the stricter of the stream's own and the
// operator's policy in bounded statements, and schedules each stream's next visit from its
// policy: not before an interval has passed, and only once something can be removed. The
// state lives in the rows, so a restart, or another instance, simply carries on.
import { hasPolicy, type RetentionPolicy, stricter } from "../protocol/retention.ts";
import type { Db } from "../store/driver/db.ts";
import { sqlState } from "../store/driver/sql-state.ts";
import { adoptRuleStreams, claimDue, countAppended, databaseNow, type DueStream, finishVisit, type NextVisit, unschedule } from "../store/streams/retention.ts";
import { compactRange, raiseEarliest, removeBelow, retentionCut } from "../store/streams/retention-remove.ts";
import { retentionBytesRemoved, retentionLag, retentionPasses, retentionPassSeconds, retentionRowsRemoved } from "../observability/retention.ts";
import type { RetentionRules } from "./rules.ts";

export interface RetentionOptions {
  intervalMs: number;
  deleteGraceMs: number;
  /**
   * Rows per statement: a retention delete removes at most this many, and a compaction step
   * reads this many new positions (plus the rows already compacted before them).
   */
  batchRows?: number;
  /** Streams claimed per query. */
  claimStreams?: number;
  /**
   * How long a claimed stream stays off the due list if its instance dies mid-pass: 20
   * intervals, between 1 and 30 s. A pass that runs longer may meet a second one on the
   * same stream; their statements still take turns (advisory lock) and delete nothing twice.
   */
  leaseMs?: number;
}

export const RETENTION_DEFAULTS = { batchRows: 10_000, claimStreams: 16 };
const leaseFor = (intervalMs: number) => Math.min(30_000, Math.max(1_000, intervalMs * 20));
/** How often a visit tries again for the stream row an append group holds (SKIP LOCKED), 1 ms apart. */
const BUSY_TRIES = 5;

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
      await unschedule(this.db, s.id);
      return out;
    }
    const batch = this.opts.batchRows ?? RETENTION_DEFAULTS.batchRows;
    // Cut short (another pass on the stream, an append holding its row, shutdown): due again
    // at the next interval whatever was appended.
    let unfinished = false;
    const keptBytes = await countAppended(this.db, s.id, s.tail);
    let ageWake: string | null = null;
    if (policy.maxAgeSeconds !== null || policy.maxBytes !== null) {
      const at = await retentionCut(this.db, s, policy, keptBytes);
      ageWake = at.ageWake;
      // Only a cut into the stream's own rows moves its earliest offset: a fork's inherited
      // view below its fork point follows its source's policy.
      const own = Math.max(s.earliest, s.forkOffset ?? 0);
      const earliest = at.cut > own ? await this.raise(s.id, at.cut) : s.earliest;
      if (earliest === "busy") {
        unfinished = true;
        out.lag += at.cut - s.earliest;
      } else {
        // Rows below the earliest offset: this cut's, and any an interrupted visit left.
        for (;;) {
          if (this.stopped) {
            unfinished = true;
            break;
          }
          const step = await removeBelow(this.db, s.id, Math.min(earliest, at.cut), batch);
          if (!step) {
            unfinished = true;
            break;
          }
          this.count("retention", step.rows, step.bytes, out);
          if (step.done) break;
        }
      }
    }
    const graceWakes: string[] = [];
    if (policy.compaction === "state" && s.isJson) {
      const lo = Math.max(s.earliest, s.forkOffset ?? 0);
      for (let from = lo; from < s.tail; from += batch) {
        if (this.stopped) {
          unfinished = true;
          break;
        }
        const step = await this.compact(s.id, lo, Math.min(s.tail, from + batch));
        if (!step) {
          unfinished = true;
          break;
        }
        this.count("compaction", step.rows, step.bytes, out);
        if (step.graceWake !== null) graceWakes.push(step.graceWake);
      }
    }
    await finishVisit(this.db, s.id, nextVisit(policy, this.opts.intervalMs, unfinished, ageWake, graceWakes));
    return out;
  }

  /** raiseEarliest, tried again a few times while an append group holds the stream row. */
  private async raise(id: number, cut: number): Promise<number | "busy"> {
    for (let i = 0; ; i++) {
      const r = await raiseEarliest(this.db, id, cut);
      if (r !== "busy" || i + 1 >= BUSY_TRIES) return r;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** A compaction step, parsed the fast way unless a message defeats it (then each through ds_message_jsonb). */
  private async compact(id: number, lo: number, to: number) {
    try {
      return await compactRange(this.db, id, lo, to, this.opts.deleteGraceMs);
    } catch (err) {
      // 22xxx: data the fast path cannot take (bad encoding, jsonb limits); 54xxx: too deep.
      const code = sqlState(err) ?? "";
      if (!(code.startsWith("22") || code.startsWith("54"))) throw err;
      return compactRange(this.db, id, lo, to, this.opts.deleteGraceMs, true);
    }
  }

  private count(reason: "retention" | "compaction", rows: number, bytes: number, out: PassResult): void {
    retentionRowsRemoved.inc({ reason }, rows);
    retentionBytesRemoved.inc({ reason }, bytes);
    out.rows += rows;
    out.bytes += bytes;
  }
}

/** When a visited stream is due next (store/streams/retention.ts claimDue reads these). */
function nextVisit(policy: RetentionPolicy, intervalMs: number, unfinished: boolean, ageWake: string | null, graceWakes: string[]): NextVisit {
  return {
    paceMs: intervalMs,
    // Cut short: due at the next interval whatever was appended.
    wakes: unfinished ? ["-infinity"] : ageWake === null ? graceWakes : [ageWake, ...graceWakes],
    // An age limit with nothing retained learns its next wake from the next append.
    onAppend: policy.compaction === "state" || (policy.maxAgeSeconds !== null && ageWake === null),
    sizeLimit: policy.maxBytes,
  };
}
