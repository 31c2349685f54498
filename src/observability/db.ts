// Watches the database from outside store/: counts operations in flight (postgres.js does
// not expose its pool's queues) and operations that failed for want of a database. The
// outage itself is logged by the store's availability gate (store/driver/availability.ts): once,
// with its cause, when it starts, and once when the database answers again.
import type { Db } from "../store/driver/db.ts";
import { isConnectionError } from "../store/index.ts";
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
  const failed = (err: unknown) => {
    if (isConnectionError(err)) dbErrors.inc();
  };
  const track = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      inFlight++;
      try {
        return await fn(...args);
      } catch (err) {
        failed(err);
        throw err;
      } finally {
        inFlight--;
      }
    };
  db.rows = track(db.rows.bind(db)) as Db["rows"];
  db.run = track(db.run.bind(db)) as Db["run"];
  db.tx = track(db.tx.bind(db)) as Db["tx"];
  if (db.copyOut) db.copyOut = track(db.copyOut.bind(db));
  return {
    inUse: () => Math.min(inFlight, connections),
    waiting: () => Math.max(0, inFlight - connections),
    up: () => db.available,
  };
}
