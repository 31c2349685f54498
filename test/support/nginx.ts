// A plain round-robin nginx in front of several instances (no sticky sessions), for
// conformance runs through a load balancer, multi-instance tests and benchmarks.
// nginx comes from Debian's packages (.ci/run installs it); its configuration is
// deploy/nginx.conf, the same file the compose deployment uses.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ROOT } from "./spawn-server.ts";

export interface LoadBalancer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const NGINX_BIN = process.env.NGINX_BIN ?? "/usr/sbin/nginx";

/** The one nginx configuration (deploy/nginx.conf), shared with deploy/compose.yaml. */
export const NGINX_TEMPLATE = join(ROOT, "deploy/nginx.conf");

/**
 * Fills deploy/nginx.conf's ${NAME} placeholders the way the nginx image's template step
 * does (from `values`); a placeholder without a value is an error, not an empty string.
 */
export function renderNginxTemplate(values: Record<string, string>, template = readFileSync(NGINX_TEMPLATE, "utf8")): string {
  return template.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`deploy/nginx.conf: no value for \${${name}}`);
    return value;
  });
}

/** A complete nginx.conf for a local, unprivileged nginx: process settings here, the rest from deploy/. */
export function nginxConfig(port: number, upstreamPorts: number[], dir: string, accessLog = "off"): string {
  const site = renderNginxTemplate({
    DS_LISTEN: `127.0.0.1:${port}`,
    DS_UPSTREAMS: upstreamPorts.map((p) => `server 127.0.0.1:${p};`).join(" "),
    DS_ACCESS_LOG: accessLog,
  });
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
http {
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${site}
}
`;
}

export async function startNginx(upstreamPorts: number[], opts: { accessLog?: boolean } = {}): Promise<LoadBalancer & { dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ds-nginx-"));
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(port, upstreamPorts, dir, opts.accessLog ? `${dir}/access.log ds_requests` : "off"));
  const proc: ChildProcess = spawn(NGINX_BIN, ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: "inherit" });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // starting
    }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error("nginx did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    dir,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill("SIGQUIT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null) proc.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
