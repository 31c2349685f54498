// Counts the plain queries (Db.rows) a database handle runs from now on, in place, so code
// that already holds the handle is counted too. Statements rendered once (Db.run: the
// append group's write, the claim statements) are counted only with `statements`.
import type { Db } from "../../src/store/driver/db.ts";

export function countQueries(db: Db, opts: { statements?: boolean } = {}): { queries: number } {
  const counter = { queries: 0 };
  const rows = db.rows.bind(db);
  db.rows = ((q: Parameters<Db["rows"]>[0], o?: Parameters<Db["rows"]>[1]) => {
    counter.queries++;
    return rows(q, o);
  }) as Db["rows"];
  if (opts.statements) {
    const run = db.run.bind(db);
    db.run = ((st: Parameters<Db["run"]>[0], values: Parameters<Db["run"]>[1]) => {
      counter.queries++;
      return run(st, values);
    }) as Db["run"];
  }
  return counter;
}
