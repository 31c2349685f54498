// Secrets in logs (issue 25, item 5): the rule in src/observability/redact.ts, and what the
// real entry point prints on Bun and Deno, at start-up and when start-up fails.
import { describe, expect, test } from "bun:test";
import { hideSecretsIn, redactSetting } from "../../src/observability/redact.ts";
import { runToExit } from "../support/spawn-server.ts";

const JWK = JSON.stringify({ kty: "OKP", crv: "Ed25519", d: "PRIVATEdPART", x: "publicxpart" });

describe("the redaction rule", () => {
  test("settings named KEY, SECRET, TOKEN, PASSWORD or PRIVATE are hidden whole", () => {
    expect(redactSetting("WEBHOOK_SIGNING_KEY", JWK)).toBe("[redacted]");
    expect(redactSetting("AUTH_JWT_SECRET", "x".repeat(40))).toBe("[redacted]");
    expect(redactSetting("SOME_FUTURE_API_TOKEN", "abc")).toBe("[redacted]");
    expect(redactSetting("PGPASSWORD", "abc")).toBe("[redacted]");
  });

  test("paths (_FILE), numbers and true/false switches are not secrets", () => {
    expect(redactSetting("AUTH_TOKENS_FILE", "/etc/ds/tokens.json")).toBe("/etc/ds/tokens.json");
    expect(redactSetting("CALLBACK_TOKEN_TTL_S", 3600)).toBe(3600);
    expect(redactSetting("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")).toBe("true");
    expect(redactSetting("WEBHOOK_SIGNING_KEY", "true-ish")).toBe("[redacted]");
    expect(redactSetting("HOST", "127.0.0.1")).toBe("127.0.0.1");
  });

  test("passwords inside URLs, of any setting, lists included", () => {
    expect(redactSetting("DATABASE_URL", "postgres://u:hunter2@db:5432/x")).toBe("postgres://u:***@db:5432/x");
    expect(redactSetting("DATABASE_URL", "postgres://db/x?user=u&password=hunter2&sslmode=require")).toBe(
      "postgres://db/x?user=u&password=***&sslmode=require",
    );
    expect(redactSetting("DATABASE_URL", "postgres://:p%40ss@db/x?sslpassword=k3y")).toBe("postgres://:***@db/x?sslpassword=***");
    // A password with a raw @ still ends at the last @ of the authority.
    expect(redactSetting("DATABASE_URL", "postgres://u:a@b@db/x")).toBe("postgres://u:***@db/x");
    expect(redactSetting("DATABASE_READ_URLS", "postgres://a:p1@h1/db,postgres://b:p2@h2/db")).toBe(
      "postgres://a:***@h1/db,postgres://b:***@h2/db",
    );
    expect(redactSetting("LISTEN_DATABASE_URL", "host=db user=u password=hunter2 dbname=x")).toBe("host=db user=u password=*** dbname=x");
    expect(redactSetting("AUTH_JWKS_URL", "https://idp/jwks?access_token=abc&v=1")).toBe("https://idp/jwks?access_token=***&v=1");
    // Nothing secret: unchanged, sslkey (a path) included.
    expect(hideSecretsIn("postgres://u@db/x?sslkey=/k.pem&application_name=ds")).toBe("postgres://u@db/x?sslkey=/k.pem&application_name=ds");
  });

  test("in free text: an error message naming the URL", () => {
    expect(hideSecretsIn("Invalid URL: 'postgres://postgres:hunter2@[bad/test'")).toBe("Invalid URL: 'postgres://postgres:***@[bad/test'");
    // Settings named in messages are not parameters with secrets.
    expect(hideSecretsIn("bind HOST=127.0.0.1, or set AUTH=none")).toBe("bind HOST=127.0.0.1, or set AUTH=none");
  });
});

const run = (runtime: "bun" | "deno", env: Record<string, string>) =>
  runToExit(runtime, { DATA_DIR: "memory://", PORT: "0", LOG_FORMAT: "json", DATABASE_CONNECT_TIMEOUT_MS: "500", ...env });

for (const runtime of ["bun", "deno"] as const) {
  describe(`what ${runtime} prints`, () => {
    test("start-up line and connection failure: no signing key, no URL password", async () => {
      const { code, output } = await run(runtime, {
        WEBHOOK_SIGNING_KEY: JWK,
        // Nothing listens on port 1: start-up fails connecting.
        DATABASE_URL: "postgres://postgres:hunter2@127.0.0.1:1/test?password=hunter3",
      });
      expect(code).toBe(1);
      const starting = output.split("\n").find((l) => l.includes('"starting"'));
      expect(starting).toBeDefined();
      const config = JSON.parse(starting!).config;
      expect(config.WEBHOOK_SIGNING_KEY).toBe("[redacted]");
      expect(config.DATABASE_URL).toBe("postgres://postgres:***@127.0.0.1:1/test?password=***");
      expect(output).toContain("not starting: ");
      expect(output).not.toContain("PRIVATEdPART");
      expect(output).not.toContain("hunter");
    }, 40_000);

    test("a malformed DATABASE_URL: the error names it without its password", async () => {
      const { code, output } = await run(runtime, { DATABASE_URL: "postgres://postgres:hunter2@[bad/test" });
      expect(code).toBe(1);
      expect(output).toContain("not starting: ");
      expect(output).toContain("postgres://postgres:***@[bad/test");
      expect(output).not.toContain("hunter2");
    }, 40_000);
  });
}
