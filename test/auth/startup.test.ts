// The secure default through the real entry point, on Bun and Deno: no auth on a
// non-loopback address stops the process with a message before it listens or opens storage.
import { describe, expect, test } from "bun:test";
import { runToExit } from "../support/spawn-server.ts";

const run = (runtime: "bun" | "deno", env: Record<string, string>) =>
  runToExit(runtime, { DATABASE_URL: "", DATA_DIR: "memory://", PORT: "0", ...env });

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
