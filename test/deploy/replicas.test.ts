// deploy/compose.replicas.yaml (issue 29.5), checked without a Docker daemon: the recipe's
// shape (a primary, a synchronous standby, PgBouncer beside each, three instances behind
// nginx, only nginx published), its settings (the URLs the failover and PgBouncer tests run
// with), its scripts' syntax, and its PgBouncer configuration run by a real pgbouncer.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { driverTarget } from "../../src/store/driver/target.ts";
import { PGBOUNCER_BIN } from "../support/pgbouncer.ts";
import { ROOT } from "../support/spawn-server.ts";

const DEPLOY = join(ROOT, "deploy");
const COMPOSE_BIN = process.env.DOCKER_COMPOSE_BIN ?? "/usr/bin/docker-compose";
const hasCompose = existsSync(COMPOSE_BIN);
if (!hasCompose) console.warn(`test/deploy/replicas.test.ts: ${COMPOSE_BIN} not installed, the compose file is checked as YAML only`);

type Service = { environment?: Record<string, string>; ports?: unknown[]; image?: string; build?: { dockerfile?: string }; entrypoint?: string[]; volumes?: unknown[] };
type Compose = { services: Record<string, Service> };
const INSTANCES = ["ds1", "ds2", "ds3"];

function checkRecipe(c: Compose, password: string) {
  expect(Object.keys(c.services).sort()).toEqual(["ds1", "ds2", "ds3", "nginx", "pgbouncer-primary", "pgbouncer-standby", "primary", "standby"]);
  for (const name of ["primary", "standby"]) expect(c.services[name].image).toMatch(/^postgres:15/);
  for (const [name, upstream] of [["pgbouncer-primary", "primary"], ["pgbouncer-standby", "standby"]]) {
    expect(c.services[name].environment?.PGB_UPSTREAM).toBe(upstream);
    expect(String(c.services[name].build?.dockerfile)).toContain("pgbouncer.Dockerfile");
  }
  for (const name of INSTANCES) {
    const env = c.services[name].environment!;
    // Writes through the PgBouncers to whichever server is the primary (test/reliability/failover.test.ts).
    expect(env.DATABASE_URL).toBe(`postgres://streams:${password}@pgbouncer-primary:6432,pgbouncer-standby:6432/streams?target_session_attrs=read-write`);
    expect(driverTarget(env.DATABASE_URL).targetSessionAttrs).toBe("primary");
    // LISTEN past the pooler, and prepared statements off for PgBouncer 1.18 (test/http/pgbouncer.test.ts).
    expect(env.LISTEN_DATABASE_URL).toBe(`postgres://streams:${password}@primary:5432,standby:5432/streams?target_session_attrs=read-write`);
    expect(env.DATABASE_PREPARE).toBe("false");
    // Catch-up reads from the standby (test/reliability/standby-reads.test.ts).
    expect(env.DATABASE_READ_URLS).toBe(`postgres://streams:${password}@pgbouncer-standby:6432/streams`);
    expect(c.services[name].ports).toBeUndefined();
  }
  for (const name of ["primary", "standby", "pgbouncer-primary", "pgbouncer-standby"]) expect(c.services[name].ports).toBeUndefined();
  expect(c.services.nginx.ports?.length).toBe(1);
  expect(c.services.nginx.environment!.DS_UPSTREAMS).toBe(INSTANCES.map((n) => `server ${n}:4437;`).join(" "));
}

describe("deploy/compose.replicas.yaml", () => {
  test.skipIf(!hasCompose)("docker-compose config accepts it", () => {
    const run = spawnSync(COMPOSE_BIN, ["-f", join(DEPLOY, "compose.replicas.yaml"), "config"], {
      encoding: "utf8",
      env: { ...process.env, POSTGRES_PASSWORD: "s3cret", REPLICATION_PASSWORD: "r3p" },
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    checkRecipe(Bun.YAML.parse(run.stdout) as Compose, "s3cret");
  });

  test("parses as YAML with the same structure (the part that needs no docker-compose)", () => {
    const c = Bun.YAML.parse(readFileSync(join(DEPLOY, "compose.replicas.yaml"), "utf8")) as Compose;
    for (const s of Object.values(c.services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) s.environment![k] = v.replaceAll("${POSTGRES_PASSWORD:-streams}", "streams");
    }
    checkRecipe(c, "streams");
    // The standby is made by its own script from the primary; the primary asks for it synchronously.
    expect(c.services.standby.entrypoint).toEqual(["/standby.sh"]);
    const init = readFileSync(join(DEPLOY, "replicas/primary-init.sh"), "utf8");
    expect(init).toContain("synchronous_standby_names = '*'");
    expect(readFileSync(join(DEPLOY, "replicas/standby.sh"), "utf8")).toMatch(/pg_basebackup .*-R/);
  });

  test("its scripts are valid sh", () => {
    for (const f of ["primary-init.sh", "standby.sh"]) {
      const run = spawnSync("sh", ["-n", join(DEPLOY, "replicas", f)], { encoding: "utf8" });
      expect({ f, status: run.status, err: run.stderr }).toEqual({ f, status: 0, err: "" });
    }
  });
});

describe.skipIf(!existsSync(PGBOUNCER_BIN))("deploy/replicas/pgbouncer.ini.template", () => {
  const dir = mkdtempSync(join(tmpdir(), "ds-pgb-tmpl-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("rendered as the image renders it, with deploy/pgbouncer.ini included, pgbouncer accepts it", () => {
    chmodSync(dir, 0o777);
    const template = readFileSync(join(DEPLOY, "replicas/pgbouncer.ini.template"), "utf8");
    const rendered = template
      .replaceAll("${PGB_UPSTREAM}", "127.0.0.1")
      .replaceAll("${POSTGRES_PASSWORD}", "pw")
      .replace("%include /etc/pgbouncer/policy.ini", `%include ${join(DEPLOY, "pgbouncer.ini")}`)
      .replace("listen_port = 6432", "listen_port = 5448")
      .replace("listen_addr = 0.0.0.0", "listen_addr = 127.0.0.1");
    expect(rendered).not.toContain("${");
    const ini = join(dir, "pgbouncer.ini");
    writeFileSync(ini, rendered);
    // -v prints every setting as it is read; a bad line ends the run at once with an error.
    const args = process.getuid?.() === 0 ? ["-u", "postgres", "-v", ini] : ["-v", ini];
    const run = spawnSync("timeout", ["2", PGBOUNCER_BIN, ...args], { encoding: "utf8" });
    const out = `${run.stdout}${run.stderr}`;
    expect(out).toContain("'pool_mode' = 'transaction' ok:1");
    expect(out).toContain("'auth_type' = 'any' ok:1");
    expect(out).toContain("listening on 127.0.0.1:5448");
    expect(out).not.toMatch(/FATAL|ERROR/);
  });
});
