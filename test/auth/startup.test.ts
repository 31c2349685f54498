// The secure default through the real entry point, on Bun and Deno: no auth on a
// non-loopback address stops the process with a message before it listens or opens storage.
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../support/spawn-server.ts";

function run(runtime: "bun" | "deno", env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const args = runtime === "bun" ? ["src/main.ts"] : ["run", "-A", "src/main.ts"];
  const proc = spawn(join(ROOT, "node_modules/.bin", runtime), args, {
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), DATABASE_URL: "", DATA_DIR: "memory://", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout.on("data", (b) => (output += b));
  proc.stderr.on("data", (b) => (output += b));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    proc.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

for (const runtime of ["bun", "deno"] as const) {
  describe(`start-up on ${runtime}`, () => {
    test("no auth on a non-loopback HOST refuses to start, naming the way out", async () => {
      const { code, output } = await run(runtime, { HOST: "0.0.0.0", AUTH: "" });
      expect(code).toBe(1);
      expect(output).toContain("not starting: refusing to serve on 0.0.0.0 without authentication");
      expect(output).toContain("AUTH=none");
      expect(output).not.toContain("listening");
    }, 40_000);

    test("an unreadable token file refuses to start", async () => {
      const { code, output } = await run(runtime, { AUTH_TOKENS_FILE: "/nonexistent/tokens.json" });
      expect(code).toBe(1);
      expect(output).toContain("not starting: AUTH_TOKENS_FILE /nonexistent/tokens.json");
    }, 40_000);
  });
}
