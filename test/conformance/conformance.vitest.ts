// The official conformance suite, run by vitest against our server in a separate process
// (its fake-timer-free sleeps must not share a clock or event loop with the server).
//   CONFORMANCE_RUNTIME=bun|deno   which runtime starts the server (default bun)
//   DATABASE_URL                   Postgres to use (a fresh schema per run); unset → PGlite
//   CONFORMANCE_URL                test an already running server / load balancer instead
//   CONFORMANCE_AUTH=1             run with a token file; every request carries the token
import { runConformanceTests } from "@durable-streams/server-conformance-tests";
import { afterAll, beforeAll } from "vitest";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { authedFetch, type TokenFixture, writeTokenFile } from "../support/auth.ts";

const LONG_POLL_TIMEOUT_MS = 1_000;
// The subscription tests are opt-in (the suite's CLI cannot turn them on).
const config = { baseUrl: process.env.CONFORMANCE_URL ?? "", longPollTimeoutMs: LONG_POLL_TIMEOUT_MS, subscriptions: true };
let server: SpawnedServer | undefined;
let auth: TokenFixture | undefined;

beforeAll(async () => {
  if (process.env.CONFORMANCE_URL) return;
  const runtime = (process.env.CONFORMANCE_RUNTIME ?? "bun") as Runtime;
  const databaseUrl = process.env.DATABASE_URL || undefined;
  auth = process.env.CONFORMANCE_AUTH === "1"
    ? writeTokenFile([{ name: "conformance", allow: [{ paths: ["**"], ops: ["read", "append", "create", "delete", "admin"] }] }])
    : undefined;
  server = await spawnServer({
    runtime,
    // As in production: /healthz only after the instance's warm-up traffic.
    warmUp: true,
    databaseUrl,
    schema: databaseUrl ? `conf_${runtime}_${Date.now().toString(36)}` : undefined,
    env: {
      LONG_POLL_TIMEOUT_MS: String(LONG_POLL_TIMEOUT_MS),
      SSE_MAX_LIFETIME_MS: "60000",
      // The suite's webhook receivers listen on this machine (issue 25.6: opt-in).
      WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
      ...(auth ? { AUTH_TOKENS_FILE: auth.file } : {}),
    },
    quiet: !process.env.CONFORMANCE_VERBOSE,
  });
  config.baseUrl = server.url;
  if (auth) {
    // The suite has no option for extra request headers; its own fetch calls and its client
    // library both call the global fetch at request time, so the token is added there.
    const probe = await fetch(`${server.url}/v1/stream/conformance-auth-probe?offset=-1`);
    if (probe.status !== 401) throw new Error(`auth is not on: an anonymous read got ${probe.status}`);
    globalThis.fetch = authedFetch(globalThis.fetch, auth.tokens.conformance);
  }
  console.log(`conformance: ${runtime} + ${databaseUrl ? "postgres" : "pglite"}${auth ? " + auth" : ""} at ${server.url}`);
});

afterAll(async () => {
  await server?.stop();
  auth?.cleanup();
});

runConformanceTests(config);
