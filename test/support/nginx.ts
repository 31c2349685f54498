// A plain round-robin nginx in front of several instances (no sticky sessions), for
// conformance runs through a load balancer, multi-instance tests and benchmarks.
// nginx comes from Debian's packages (.ci/run installs it).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./spawn-server.ts";

export interface LoadBalancer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const NGINX_BIN = process.env.NGINX_BIN ?? "/usr/sbin/nginx";

export function nginxConfig(port: number, upstreamPorts: number[], dir: string): string {
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream streams {
${upstreamPorts.map((p) => `    server 127.0.0.1:${p};`).join("\n")}
    keepalive 64;
    # Below the server's REQUEST_IDLE_TIMEOUT_S (30 s), so nginx never reuses a connection
    # the server is closing.
    keepalive_timeout 20s;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 80m;
    location / {
      proxy_pass http://streams;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      # Live reads: stream SSE bytes as they come and let long-polls wait.
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
    }
  }
}
`;
}

export async function startNginx(upstreamPorts: number[]): Promise<LoadBalancer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ds-nginx-"));
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(port, upstreamPorts, dir));
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
