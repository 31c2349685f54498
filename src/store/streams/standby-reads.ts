// Catch-up reads from hot standbys (issue 29.1). The stream's row (tail, fork chain) always
// comes from the primary, which knows everything acknowledged or notified; only the chunk
// bytes are read on a standby. Chunk rows never change once committed, so whatever rows a
// standby has are right; a standby that has not yet replayed up to the tail returns fewer,
// which is seen (the read stops short of the tail with budget left) and the rest is read
// on the primary. So a read never returns less than the primary would, however far a
// standby lags, and no LSN has to be carried around.
import type { ReadResult, Segment } from "./chunks.ts";
import { readUnits } from "./chunks.ts";
import type { Db } from "../driver/db.ts";
import { isConnectionError } from "../driver/availability.ts";

export interface StandbyReadStats {
  /** Reads answered entirely by a standby. */
  standby: number;
  /** Reads a standby answered in part (it lagged), finished on the primary. */
  completedOnPrimary: number;
  /** Reads that went to the primary: no standby available, or it failed. */
  primary: number;
}

export class StandbyReads {
  readonly stats: StandbyReadStats = { standby: 0, completedOnPrimary: 0, primary: 0 };
  private next = 0;

  constructor(private readonly primary: Db, private readonly standbys: Db[]) {}

  /** A standby to try, round robin over those not known to be down. */
  private pick(): Db | undefined {
    for (let i = 0; i < this.standbys.length; i++) {
      const db = this.standbys[this.next++ % this.standbys.length];
      if (db.available) return db;
    }
    return undefined;
  }

  /**
   * `onGap` (Store.read) explains a position with nothing stored, on the primary. A standby
   * cannot tell a gap from rows it has not replayed yet, so its read stops at the first one
   * and the primary reads on from there (past compaction gaps too, with `onGap`).
   */
  async read(segments: Segment[], from: number, tail: number, maxBytes: number, onGap?: (at: number) => Promise<void>): Promise<ReadResult> {
    const standby = this.pick();
    let got: ReadResult | undefined;
    if (standby) {
      try {
        got = await readUnits(standby, segments, from, maxBytes, async () => "stop");
      } catch (err) {
        // A standby that cannot answer (stopped, restarting) is skipped until it does
        // (its gate); anything else is a bug to surface, not to hide behind the primary.
        if (!isConnectionError(err)) throw err;
      }
    }
    if (!got) {
      this.stats.primary++;
      return readUnits(this.primary, segments, from, maxBytes, onGap);
    }
    const bytes = got.units.reduce((n, u) => n + u.byteLength, 0);
    if (got.next >= tail || bytes >= maxBytes) {
      this.stats.standby++;
      return got;
    }
    // The standby has not replayed as far as the primary's tail: the rest from the primary.
    this.stats.completedOnPrimary++;
    const rest = await readUnits(this.primary, segments, got.next, maxBytes - bytes, onGap);
    return { units: [...got.units, ...rest.units], starts: [...(got.starts ?? []), ...(rest.starts ?? [])], next: rest.next };
  }

  close(): Promise<void> {
    return Promise.all(this.standbys.map((db) => db.close())).then(() => {});
  }
}

/**
 * DATABASE_READ_URLS: standby URLs separated by commas. A URL may itself name several hosts
 * (h1:5432,h2:5432), so the list is split only before a scheme.
 */
export function parseReadUrls(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  return value.split(/,(?=\s*postgres(?:ql)?:\/\/)/).map((u) => u.trim()).filter(Boolean);
}
