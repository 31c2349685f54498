// A private, throw-away Postgres cluster for fault tests (Debian's postgresql-common tools):
// created on a port of its own, restarted or crashed at will, always dropped afterwards.
// The shared cluster on 5432 is never touched: every command names this cluster only.
import { spawnSync, spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

const TOOLS = "/usr/bin/pg_createcluster";
/** Ports reserved for fault-test clusters (other tests pass their own range: ClusterOptions.ports). */
const PORTS = [5490, 5491, 5492, 5493, 5494, 5495, 5496, 5497, 5498, 5499];

export interface ClusterOptions {
  /** Ports to choose from (default 5490-5499). */
  ports?: number[];
  /** Further postgresql.conf lines for this cluster only (not synchronous_standby_names: CREATE DATABASE would wait for a standby). */
  settings?: string[];
  /**
   * Make a hot standby of this cluster instead of an empty cluster: its data directory is
   * a pg_basebackup -R of the primary (streaming replication, primary_conninfo written).
   */
  standbyOf?: PgCluster;
}

export interface PgCluster {
  version: string;
  name: string;
  port: number;
  /** URL of the cluster's `ds` database. */
  url: string;
  /** Fast restart (pg_ctl -m fast): clients are disconnected, the server comes back clean. */
  restart(mode?: "fast" | "immediate"): Promise<CommandResult>;
  stop(mode?: "fast" | "immediate"): Promise<CommandResult>;
  start(): Promise<CommandResult>;
  /** Adds postgresql.conf lines and reloads (e.g. synchronous_standby_names once a standby exists). */
  configure(settings: string[]): Promise<CommandResult>;
  /** pg_ctl promote: a standby becomes a primary (waits until it accepts writes). */
  promote(): Promise<CommandResult>;
  /** Runs one SQL statement with psql on the `postgres` database (or `db`); its unaligned output. */
  psql(query: string, db?: string): Promise<CommandResult>;
  /** Terminates every backend of the `ds` database at once (Postgres itself stays up). */
  terminateBackends(): Promise<CommandResult>;
  /** The cluster's server log so far (lock waits are logged: log_lock_waits). */
  log(): string;
  /** True when pg_isready says the cluster accepts connections. */
  ready(): Promise<boolean>;
  /** Stops (immediately) and removes the cluster, its data and its config. Safe to call twice. */
  drop(): void;
}

export interface CommandResult {
  code: number;
  output: string;
  startedAt: number;
  endedAt: number;
}

/** Why the fault tests cannot run here, or undefined when they can. */
export function pgClusterUnavailable(): string | undefined {
  if (!existsSync(TOOLS)) return "pg_createcluster is not installed (Debian postgresql-common)";
  const versions = installedVersions();
  if (versions.length === 0) return "no Postgres server version under /usr/lib/postgresql";
  // pg_createcluster writes under /etc/postgresql and /var/lib/postgresql: root (or postgres) only.
  if (process.getuid?.() !== 0 && process.env.USER !== "postgres") return "pg_createcluster needs root or the postgres user";
  return undefined;
}

function installedVersions(): string[] {
  const r = spawnSync("ls", ["/usr/lib/postgresql"], { encoding: "utf8" });
  return (r.stdout ?? "")
    .split(/\s+/)
    .filter((v) => /^\d+$/.test(v) && existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
    .sort((a, b) => Number(b) - Number(a));
}

function run(cmd: string, args: string[]): Promise<CommandResult> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (b) => (output += b));
    p.stderr.on("data", (b) => (output += b));
    p.on("error", (e) => resolve({ code: -1, output: String(e), startedAt, endedAt: performance.now() }));
    p.on("exit", (code) => resolve({ code: code ?? -1, output, startedAt, endedAt: performance.now() }));
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

function usedPorts(): Set<number> {
  // Clusters that exist but are stopped do not hold their port; pg_lsclusters knows them.
  const r = spawnSync("pg_lsclusters", ["-h"], { encoding: "utf8" });
  return new Set((r.stdout ?? "").split("\n").map((l) => Number(l.split(/\s+/)[2])).filter(Number.isFinite));
}

/** Drops clusters left by runs of this helper whose process is gone (a killed test run). */
function dropLeftovers(prefix: string): void {
  const r = spawnSync("pg_lsclusters", ["-h"], { encoding: "utf8" });
  for (const line of (r.stdout ?? "").split("\n")) {
    const [version, name] = line.split(/\s+/);
    const pid = Number(new RegExp(`^${prefix}_(\\d+)_`).exec(name ?? "")?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      spawnSync("pg_dropcluster", ["--stop", version, name], { stdio: "ignore" });
    }
  }
}

export async function createPgCluster(prefix = "dsfault", opts: ClusterOptions = {}): Promise<PgCluster> {
  dropLeftovers(prefix);
  const version = process.env.PG_CLUSTER_VERSION ?? installedVersions()[0];
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const taken = usedPorts();
  let port: number | undefined;
  for (const p of opts.ports ?? PORTS) {
    if (!taken.has(p) && (await portFree(p))) {
      port = p;
      break;
    }
  }
  const range = opts.ports ?? PORTS;
  if (port === undefined) throw new Error(`no free port for a private Postgres cluster in ${range[0]}-${range.at(-1)}`);
  const ctl = (...args: string[]) => run("pg_ctlcluster", ["--skip-systemctl-redirect", ...args]);
  let dropped = false;
  const cluster: PgCluster = {
    version,
    name,
    port,
    url: `postgres://postgres@127.0.0.1:${port}/ds`,
    restart: (mode = "fast") => ctl("-m", mode, version, name, "restart"),
    stop: (mode = "fast") => ctl("-m", mode, version, name, "stop"),
    start: () => ctl(version, name, "start"),
    promote: () => ctl(version, name, "promote"),
    configure: (settings) => {
      appendFileSync(conf, settings.join("\n") + "\n");
      return ctl(version, name, "reload");
    },
    psql: (query, db = "postgres") => run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", db, "-qAtc", query]),
    terminateBackends: () =>
      run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-qAtc",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'ds' AND pid <> pg_backend_pid()"]),
    log: () => {
      try {
        return readFileSync(`/var/log/postgresql/postgresql-${version}-${name}.log`, "utf8");
      } catch {
        return "";
      }
    },
    ready: async () => (await run("pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)])).code === 0,
    drop() {
      if (dropped) return;
      dropped = true;
      spawnSync("pg_ctlcluster", ["--skip-systemctl-redirect", "-m", "immediate", version, name, "stop"], { stdio: "ignore" });
      spawnSync("pg_dropcluster", ["--stop", version, name], { stdio: "ignore" });
    },
  };
  // Keep the cluster small and quick to (re)start: it only ever holds one test's data.
  const created = await run("pg_createcluster", [
    version, name, "--port", String(port), "--start-conf", "manual",
    "--", "--auth=trust", "--no-sync",
  ]);
  if (created.code !== 0) {
    cluster.drop();
    throw new Error(`pg_createcluster failed: ${created.output}`);
  }
  const conf = `/etc/postgresql/${version}/${name}/conf.d/ds-fault.conf`;
  const settings = ["fsync=off", "max_connections=100", "shared_buffers=16MB", "listen_addresses='127.0.0.1'", "log_lock_waits=on", ...(opts.settings ?? [])];
  writeFileSync(conf, settings.join("\n") + "\n");
  if (opts.standbyOf) {
    // Debian keeps the configuration in /etc, so the copied data directory brings only
    // postgresql.auto.conf along; standby.signal and primary_conninfo come from -R.
    const data = `/var/lib/postgresql/${version}/${name}`;
    const copied = await run("sh", ["-c",
      `rm -rf ${data} && pg_basebackup -h 127.0.0.1 -p ${opts.standbyOf.port} -U postgres -D ${data} -R -X stream -c fast && chown -R postgres:postgres ${data} && chmod 700 ${data}`]);
    if (copied.code !== 0) {
      cluster.drop();
      throw new Error(`pg_basebackup failed: ${copied.output}`);
    }
  }
  const started = await cluster.start();
  if (started.code !== 0) {
    cluster.drop();
    throw new Error(`pg_ctlcluster start failed: ${started.output}`);
  }
  if (opts.standbyOf) return cluster; // read-only: the `ds` database came with the copy
  const made = await run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-qc", "CREATE DATABASE ds"]);
  if (made.code !== 0) {
    cluster.drop();
    throw new Error(`CREATE DATABASE failed: ${made.output}`);
  }
  return cluster;
}
