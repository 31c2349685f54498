// Fair shares (issue 25, item 9): with auth on and no per-principal setting, one token
// holding every append slot with slow bodies, or every live-read slot with long-polls, made
// every other token's requests 429. By default now each principal holds at most a quarter
// of APPENDS_IN_FLIGHT_MAX and of LIVE_READS_MAX. Bun and Deno.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { principalShare } from "../../src/auth/limits.ts";
import { type TokenFixture, writeTokenFile } from "../support/auth.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

const ALL = [{ paths: ["**"], ops: ["read", "append", "create", "delete"] }];
const SLOTS = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A POST whose body never finishes: it holds an append slot until the socket goes. */
function stalledAppend(port: number, token: string): { socket: Socket; answer: () => string } {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (d) => (received += d.toString()));
  socket.on("error", () => {});
  socket.on("connect", () =>
    socket.write(
      `POST /v1/stream/fair HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
        "Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\nslow",
    )
  );
  return { socket, answer: () => received };
}

test("the default share: a quarter with auth on, none without; a setting overrides it", () => {
  expect(principalShare(undefined, 10_000, true)).toBe(2_500);
  expect(principalShare(undefined, 20_000, true)).toBe(5_000);
  expect(principalShare(undefined, 3, true)).toBe(1);
  expect(principalShare(undefined, 0, true)).toBe(0);
  expect(principalShare(undefined, 10_000, false)).toBe(0);
  expect(principalShare(0, 10_000, true)).toBe(0);
  expect(principalShare(7, 10_000, false)).toBe(7);
});

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`per-principal shares by default on ${runtime}`, () => {
    let server: SpawnedServer;
    let fx: TokenFixture;
    let base: string;
    const as = (name: string) => ({ Authorization: `Bearer ${fx.tokens[name]}` });

    fx = writeTokenFile(["hog", "other"].map((name) => ({ name, allow: ALL })));
    const ahead = spawnAhead({
      runtime,
      quiet: true,
      env: {
        AUTH_TOKENS_FILE: fx.file,
        APPENDS_IN_FLIGHT_MAX: String(SLOTS),
        LIVE_READS_MAX: String(SLOTS),
        LONG_POLL_TIMEOUT_MS: "4000",
        // The stalled bodies must outlast the test.
        REQUEST_IDLE_TIMEOUT_S: "60",
      },
    });
    beforeAll(async () => {
      server = await ahead();
      base = `${server.url}/v1/stream`;
      expect((await fetch(`${base}/fair`, { method: "PUT", headers: { ...as("hog"), "Content-Type": "text/plain" } })).status).toBe(201);
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
      fx?.cleanup();
    }, 60_000);

    test("one token's slow append bodies leave room for another token", async () => {
      const stalled = Array.from({ length: SLOTS }, () => stalledAppend(server.port, fx.tokens.hog));
      try {
        await sleep(700);
        const res = await fetch(`${base}/fair`, { method: "POST", headers: { ...as("other"), "Content-Type": "text/plain" }, body: "x" });
        expect(res.status).toBe(204);
        // The hog got its quarter (2 of 8); the rest were refused at once, naming why.
        const refused = stalled.filter((s) => s.answer().startsWith("HTTP/1.1 429"));
        expect(refused.length).toBe(SLOTS - SLOTS / 4);
        expect(refused[0].answer()).toContain("for this client");
      } finally {
        for (const s of stalled) s.socket.destroy();
      }
    }, 20_000);

    test("one token's long-polls leave room for another token's live reads", async () => {
      const stop = new AbortController();
      const lp = (who: string, signal?: AbortSignal) =>
        fetch(`${base}/fair?offset=now&live=long-poll`, { headers: as(who), signal }).then((r) => r.status, () => 0);
      const hog = Array.from({ length: SLOTS }, () => lp("hog", stop.signal));
      try {
        await sleep(500);
        // Still waiting (204 after LONG_POLL_TIMEOUT_MS), not refused.
        const other = await Promise.race([lp("other"), sleep(1_500).then(() => "waiting")]);
        expect(other).toBe("waiting");
      } finally {
        stop.abort();
      }
      const statuses = await Promise.all(hog);
      expect(statuses.filter((s) => s === 429).length).toBe(SLOTS - SLOTS / 4);
    }, 20_000);
  });
}
