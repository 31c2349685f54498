// Counts the plain queries (Db.rows) a database handle runs from now on, in place, so code
// that already holds the handle is counted too. Statements rendered once (Db.run: the
// append group's write) are not counted.
import type { Db } from "../../src/store/driver/db.ts";

export function countQueries(db: Db): { queries: number } {
  const counter = { queries: 0 };
  const rows = db.rows.bind(db);
  db.rows = ((q: Parameters<Db["rows"]>[0], o?: Parameters<Db["rows"]>[1]) => {
    counter.queries++;
    return rows(q, o);
  }) as Db["rows"];
  return counter;
}
