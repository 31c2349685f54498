// Watches the database from outside store/: counts operations in flight (postgres.js does
// not expose its pool's queues) and notices outages. An outage is logged once, with its
// cause, when the first operation fails for want of a database, and once more when an
// operation succeeds again; requests meanwhile get 503 without a log line each.
import { isDatabaseUnavailable } from "../http/respond.ts";
import type { Db } from "../store/db.ts";
import { log } from "./log.ts";
import { dbErrors } from "./metrics.ts";

export interface DbWatch {
  inUse(): number;
  waiting(): number;
  up(): boolean;
}

/** Wraps `db`'s query entry points in place (tx counts once, for its whole duration). */
export function watchDb(db: Db, poolSize: number): DbWatch {
  // PGlite has one connection whatever the pool size says.
  const connections = db.kind === "pglite" ? 1 : poolSize;
  let inFlight = 0;
  let downSince: number | undefined;
  const ok = () => {
    if (downSince === undefined) return;
    log.info({ outageMs: Date.now() - downSince }, "database available again");
    downSince = undefined;
  };
  const failed = (err: unknown) => {
    if (!isDatabaseUnavailable(err)) return;
    dbErrors.inc();
    if (downSince !== undefined) return;
    downSince = Date.now();
    log.error({ err }, "database unavailable");
  };
  const track = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      inFlight++;
      try {
        const result = await fn(...args);
        ok();
        return result;
      } catch (err) {
        failed(err);
        throw err;
      } finally {
        inFlight--;
      }
    };
  db.rows = track(db.rows.bind(db)) as Db["rows"];
  db.tx = track(db.tx.bind(db)) as Db["tx"];
  if (db.copyOut) db.copyOut = track(db.copyOut.bind(db));
  return {
    inUse: () => Math.min(inFlight, connections),
    waiting: () => Math.max(0, inFlight - connections),
    up: () => downSince === undefined,
  };
}
