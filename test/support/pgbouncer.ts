// A private PgBouncer (Debian's package; .ci/run installs it) in transaction mode, configured
// from deploy/pgbouncer.ini (the file the compose recipe uses) plus a [databases] entry for
// one Postgres database and schema. PgBouncer refuses to run as root: it runs as postgres.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./spawn-server.ts";

export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? "/usr/sbin/pgbouncer";
export const PGBOUNCER_POLICY = join(ROOT, "deploy/pgbouncer.ini");

export interface PgBouncer {
  port: number;
  /** URL of the pooled database (same user and name as upstream). */
  url: string;
  log(): string;
  stop(): Promise<void>;
}

export function pgBouncerUnavailable(): string | undefined {
  if (!existsSync(PGBOUNCER_BIN)) return `${PGBOUNCER_BIN} is not installed (apt-get install pgbouncer)`;
  return undefined;
}

/**
 * PgBouncer on 127.0.0.1:`port` in front of `upstream` (postgres://user@host:port/db), its
 * server connections' search_path set to `schema` (left alone when undefined).
 */
export async function startPgBouncer(opts: { port: number; upstream: string; schema?: string }): Promise<PgBouncer> {
  const u = new URL(opts.upstream);
  const db = u.pathname.slice(1);
  const user = decodeURIComponent(u.username || "postgres");
  const dir = mkdtempSync(join(tmpdir(), "ds-pgbouncer-"));
  chmodSync(dir, 0o777); // written by the postgres user (logfile, pidfile)
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(join(dir, "userlist.txt"), `"${user}" ""\n`);
  writeFileSync(
    ini,
    [
      "[databases]",
      `${db} = host=${u.hostname} port=${u.port || 5432} dbname=${db}` +
        (opts.schema ? ` connect_query='SET search_path TO "${opts.schema}"'` : ""),
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${opts.port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${dir}/userlist.txt`,
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
      `admin_users = ${user}`,
      `%include ${PGBOUNCER_POLICY}`,
      "",
    ].join("\n"),
  );
  // It will not run as root: as root, it is told to switch to the postgres user (-u).
  const args = process.getuid?.() === 0 ? ["-u", "postgres", ini] : [ini];
  const proc: ChildProcess = spawn(PGBOUNCER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout!.on("data", (b) => (output += b));
  proc.stderr!.on("data", (b) => (output += b));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${opts.port}/${db}`;
  const log = () => {
    const r = spawnSync("cat", [join(dir, "pgbouncer.log")], { encoding: "utf8" });
    return `${output}${r.stdout ?? ""}`;
  };
  for (const deadline = Date.now() + 10_000; ; ) {
    if (proc.exitCode !== null) throw new Error(`pgbouncer exited at start:\n${log()}`);
    if (spawnSync("pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(opts.port), "-d", db, "-U", user]).status === 0) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`pgbouncer did not accept connections:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port: opts.port,
    url,
    log,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
        if (proc.exitCode === null) proc.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
