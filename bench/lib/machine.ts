// What the numbers were measured on, and the file-descriptor room the idle scenario needs.
import { spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { serverVersion } from "./pg.ts";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  bun: string;
  node: string;
  postgres: string;
  wrk: string;
  nginx: string;
  reference: string;
  openFilesLimit: number;
  /** The server code measured: commit, and whether src/ had uncommitted changes. */
  serverCode: string;
}

const firstLine = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim())?.trim() ?? "not found";
};

/** A process's open-files limit (this process's by default; its children inherit it). */
export function openFilesLimit(pid: number | "self" = "self"): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files")) ?? "";
  const [soft, hard] = line.replace("Max open files", "").trim().split(/\s+/).map((v) => (v === "unlimited" ? Infinity : Number(v)));
  return { soft, hard };
}

export async function machineInfo(): Promise<MachineInfo> {
  const ref = JSON.parse(readFileSync(new URL("../../node_modules/@durable-streams/server/package.json", import.meta.url), "utf8"));
  return {
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    bun: typeof Bun !== "undefined" ? Bun.version : "n/a",
    node: firstLine("node", ["--version"]),
    postgres: await serverVersion(),
    wrk: firstLine(process.env.WRK_BIN ?? "wrk", ["--version"]).replace(/ Copyright.*/, ""),
    nginx: firstLine(process.env.NGINX_BIN ?? "/usr/sbin/nginx", ["-v"]),
    reference: `@durable-streams/server ${ref.version} on Node`,
    openFilesLimit: openFilesLimit().soft,
    serverCode: serverCode(),
  };
}

function serverCode(): string {
  const root = new URL("../..", import.meta.url).pathname;
  const rev = spawnSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout?.trim() || "unknown";
  const dirty = spawnSync("git", ["-C", root, "status", "--porcelain", "--", "src", "migrations"], { encoding: "utf8" }).stdout?.trim();
  return dirty ? `${rev} + uncommitted changes in src/` : rev;
}
