// Where the driver connects, from a libpq-style URL (a Unix socket folder, several hosts),
// and a guard for a fault of the driver's own primary probe.
import process from "node:process";

/** Where the driver connects (driverTarget). */
export interface DriverTarget {
  url: string;
  /** Unix socket file, when the URL names Postgres' socket folder. */
  path?: string;
  /** Connect only to a server that is not in recovery (a primary), trying the URL's hosts in turn. */
  targetSessionAttrs?: "primary";
}

/**
 * Where the driver connects. libpq reads `host=/a/directory` in a URL's query as the folder
 * of Postgres' Unix socket (`postgres://user@localhost/db?host=/var/run/postgresql`);
 * postgres.js would send any query parameter to the server as a setting, so the socket is
 * taken out here and handed over as its `path` (the port still names the socket file).
 *
 * A URL may name several hosts (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`),
 * as libpq's does: writes must reach whichever is the primary. postgres.js 3.4 judges
 * "read-write" by default_transaction_read_only alone, which is off on a hot standby
 * (Postgres 14+ reports it at connect, so the driver never asks further): measured, it
 * connected to the standby listed first. "primary" checks in_hot_standby, so read-write
 * (and a multi-host URL that names no target, where any host would do) asks for that.
 */
export function driverTarget(databaseUrl: string): DriverTarget {
  const q = databaseUrl.indexOf("?");
  const params = new URLSearchParams(q < 0 ? "" : databaseUrl.slice(q + 1));
  const authority = databaseUrl.slice(databaseUrl.indexOf("://") + 3).split(/[/?]/)[0];
  const hosts = authority.slice(authority.lastIndexOf("@") + 1);
  const attrs = params.get("target_session_attrs");
  const primaryOnly = attrs === "read-write" || attrs === "primary" || (!attrs && hosts.includes(","));
  const target: DriverTarget = { url: databaseUrl };
  if (primaryOnly) target.targetSessionAttrs = "primary";
  const host = params.get("host");
  if (!host?.startsWith("/")) return target;
  params.delete("host");
  const rest = params.toString();
  const base = databaseUrl.slice(0, q);
  const port = /:(\d+)(?:\/|$)/.exec(base.slice(base.indexOf("@") + 1))?.[1] ?? "5432";
  return { ...target, url: rest ? `${base}?${rest}` : base, path: `${host.replace(/\/+$/, "")}/.s.PGSQL.${port}` };
}

/**
 * postgres.js asks a server whether it is a primary (target_session_attrs) with a query of
 * its own when the server did not say so at connect, as PgBouncer 1.18 never does. When
 * that query fails (a PgBouncer in front of a dead primary answers "server login has been
 * failing"), its promise is rejected with nobody listening, and Bun ends the process
 * (seen in test/reliability/failover.test.ts). The connection attempt has failed and the
 * driver goes on to the next host; that rejection is dropped here, and only that one.
 */
let probesGuarded = false;
export function dropFailedPrimaryProbes(): void {
  if (probesGuarded) return;
  probesGuarded = true;
  process.on("unhandledRejection", (reason) => {
    // The probe's error carries no query text: it is known by being a driver error of class
    // 08 (connection exception) that nobody awaited; none of our own queries goes unawaited.
    const e = reason as { name?: unknown; code?: unknown } | undefined;
    if (e?.name === "PostgresError" && String(e.code).startsWith("08")) return;
    throw reason; // anything else ends the process, as it would without this listener
  });
}
