// A subscription covers only streams its creator may read (issue 25, item 1), through real
// HTTP with auth on, on Bun and on Deno: the reported attack (a token reading only a/** that
// subscribed to ** and woke into b/secret) is refused; a subscription whose creator's grants
// narrow later (token file reloaded) never names, nor is woken by, what fell out of scope, in
// GET, claim, webhook bodies or wake events; JWT creators alike. Also: a callback with a bad
// token is refused before its body is read. PGlite, or Postgres when DATABASE_URL is set.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { JWT_SECRET, signJwt, type TokenFixture, type TokenSpec, writeTokenFile } from "../support/auth.ts";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

const HOOK_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 30_000;
const SUBS = { paths: ["__ds/subscriptions/**"], ops: ["admin"] };
const EVERYTHING = { paths: ["**"], ops: ["read", "append", "create", "delete"] };

/** Mallory may read only a/** and administer only her own subscription, as in the report. */
const specs = (carolReads: string[], probe: string): TokenSpec[] => [
  { name: "owner", allow: [EVERYTHING, SUBS] },
  { name: "mallory", allow: [{ paths: ["a/**"], ops: ["read", "append", "create"] }, { paths: ["__ds/subscriptions/evil/**"], ops: ["admin"] }] },
  { name: "carol", allow: [{ paths: carolReads, ops: ["read"] }, { paths: ["w/**"], ops: ["append"] }, SUBS] },
  // Present only in the reloaded file: proves the reload happened.
  { name: probe, allow: [{ paths: ["probe"], ops: ["read"] }] },
];

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`subscription scope on ${runtime}`, () => {
    let server: SpawnedServer;
    let fx: TokenFixture;
    let hook: Receiver;
    let base: string;
    let jwt = "";
    const schema = databaseUrl ? uniqueSchema("subscope") : undefined;

    beforeAll(async () => {
      fx = writeTokenFile(specs(["c/**"], "probe-0"));
      hook = await startReceiver();
      hook.answer = () => ({ body: { done: true } });
      server = await spawnServer({
        runtime,
        databaseUrl,
        schema,
        quiet: true,
        env: {
          AUTH_TOKENS_FILE: fx.file,
          AUTH_JWT_SECRET: JWT_SECRET,
          SUBSCRIPTION_TICK_MS: "100",
          SUBSCRIPTION_BACKSTOP_MS: "500",
          WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
        },
      });
      base = `${server.url}/v1/stream`;
      jwt = await signJwt({ sub: "jay", ds_allow: [{ paths: ["a/**"], ops: ["read", "append"] }, SUBS] });
      for (const path of ["a/x", "a/wake", "b/secret", "c/in/x", "c/out/y", "w/carol"]) {
        expect((await call("owner", "PUT", path)).status).toBe(201);
      }
    }, HOOK_TIMEOUT_MS);
    afterAll(async () => {
      await server?.stop();
      await hook?.close();
      fx?.cleanup();
      if (schema) await dropSchema(schema);
    }, HOOK_TIMEOUT_MS);

    function call(who: string, method: string, path: string, body?: unknown): Promise<Response> {
      const token = who === "jwt" ? jwt : fx.tokens[who];
      return fetch(`${base}/${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    }
    const sub = (id: string, rest = "") => `__ds/subscriptions/${id}${rest}`;
    const paths = (view: { streams: { path: string }[] }) => view.streams.map((s) => s.path).sort();

    test("the reported attack: a subscription to ** or waking into b/secret is refused, and nothing leaks", async () => {
      const secretTail = (await call("owner", "HEAD", "b/secret")).headers.get("stream-next-offset");
      const refused = [
        { type: "pull-wake", pattern: "**", wake_stream: "a/wake" },
        { type: "pull-wake", pattern: "a/**", wake_stream: "b/secret" },
        { type: "pull-wake", streams: ["a/x", "b/secret"], wake_stream: "a/wake" },
        { type: "webhook", pattern: "*/secret", webhook: { url: hook.url } },
      ];
      for (const config of refused) {
        const res = await call("mallory", "PUT", sub("evil"), config);
        const text = await res.text();
        expect(res.status).toBe(403);
        expect(text).not.toContain("b/secret\",\"link_type");
        expect((await call("mallory", "GET", sub("evil"))).status).toBe(404);
      }
      // Inside her grants it works, and lists only her streams.
      const ok = await call("mallory", "PUT", sub("evil"), { type: "pull-wake", pattern: "a/**", wake_stream: "a/wake" });
      expect(ok.status).toBe(201);
      expect(paths(await ok.json())).toEqual(["a/wake", "a/x"]);
      // Nor can she add someone else's stream to it later.
      expect((await call("mallory", "POST", sub("evil", "/streams"), { streams: ["b/secret"] })).status).toBe(403);
      await call("owner", "POST", "b/secret", [{ n: 1 }]);
      await call("owner", "POST", "a/x", [{ n: 1 }]);
      const claim = await call("mallory", "POST", sub("evil", "/claim"), { worker: "m" });
      expect(claim.status).toBe(200);
      expect(paths(await claim.json())).toEqual(["a/wake", "a/x"]);
      // b/secret got the owner's append and nothing else (no wake events).
      const secret = await (await call("owner", "GET", "b/secret?offset=-1")).json();
      expect(secret).toEqual([{ n: 1 }]);
      expect(secretTail).not.toBeNull();
    }, TEST_TIMEOUT_MS);

    test("a grant narrowed by a token file reload: the streams it loses are never named nor wake anything", async () => {
      const webhook = await call("carol", "PUT", sub("c-hook"), { type: "webhook", pattern: "c/**", webhook: { url: hook.url } });
      expect(webhook.status).toBe(201);
      expect(paths(await webhook.json())).toEqual(["c/in/x", "c/out/y"]);
      const pull = await call("carol", "PUT", sub("c-pull"), { type: "pull-wake", pattern: "c/**", wake_stream: "w/carol" });
      expect(pull.status).toBe(201);
      // Before: c/out/y is hers, and its appends are delivered.
      let from = hook.deliveries.length;
      await call("owner", "POST", "c/out/y", [{ n: 1 }]);
      const before = await hook.next((d) => d.body.subscription_id === "c-hook", 8_000, from);
      expect(before.body.streams.map((s) => s.path)).toContain("c/out/y");
      const events = async () => (await (await call("owner", "GET", "w/carol?offset=-1")).json()) as { stream: string }[];
      await until(async () => (await events()).length > 0, 8_000);
      expect((await events()).map((e) => e.stream)).toEqual(["c/out/y"]);
      const claimed = await (await call("carol", "POST", sub("c-pull", "/claim"), { worker: "w" })).json();
      expect(paths(claimed)).toContain("c/out/y");
      const acks = claimed.streams.map((s: { path: string; tail_offset: string }) => ({ stream: s.path, offset: s.tail_offset }));
      const acked = await fetch(`${base}/${sub("c-pull", "/ack")}`, {
        method: "POST",
        headers: { authorization: `Bearer ${claimed.token}`, "content-type": "application/json" },
        body: JSON.stringify({ wake_id: claimed.wake_id, generation: claimed.generation, acks, done: true }),
      });
      expect(acked.status).toBe(200);

      const eventsBefore = (await events()).length;

      // Carol now reads only c/in/**.
      fx.rewrite(specs(["c/in/**"], "probe-1"));
      server.proc.kill("SIGHUP");
      await until(async () => (await fetch(`${base}/probe?offset=-1`, { headers: { authorization: `Bearer ${fx.tokens["probe-1"]}` } })).status !== 401);

      // GET names only what is in scope, even to a caller who may read everything.
      for (const who of ["owner", "carol"]) expect(paths(await (await call(who, "GET", sub("c-hook"))).json())).toEqual(["c/in/x"]);
      // An append to c/out/y alone wakes nobody.
      from = hook.deliveries.length;
      await call("owner", "POST", "c/out/y", [{ n: 2 }]);
      await sleep(1_500);
      expect(hook.deliveries.slice(from).filter((d) => d.body.subscription_id === "c-hook")).toEqual([]);
      expect((await call("carol", "POST", sub("c-pull", "/claim"), { worker: "w" })).status).toBe(409);
      // An append to c/in/x is delivered, naming c/in/x only.
      await call("owner", "POST", "c/out/y", [{ n: 3 }]);
      await call("owner", "POST", "c/in/x", [{ n: 1 }]);
      const after = await hook.next((d) => d.body.subscription_id === "c-hook", 8_000, from);
      expect(after.raw).not.toContain("c/out");
      // The pull-wake subscription's wake event, written after the reload, names c/in/x only.
      const wakeEvents = async () => (await events()).slice(eventsBefore);
      await until(async () => (await wakeEvents()).length > 0, 8_000);
      expect((await wakeEvents()).map((e) => e.stream)).toEqual(["c/in/x"]);
      // A claim names only what is in scope.
      const claim = await call("owner", "POST", sub("c-pull", "/claim"), { worker: "w2" });
      expect(claim.status).toBe(200);
      const body = await claim.json();
      expect(paths(body)).toEqual(["c/in/x"]);
    }, TEST_TIMEOUT_MS);

    test("a JWT's grants come from its claims: the same rule, and its scope stays with the subscription", async () => {
      expect((await call("jwt", "PUT", sub("jay"), { type: "pull-wake", pattern: "**", wake_stream: "a/wake" })).status).toBe(403);
      expect((await call("jwt", "PUT", sub("jay"), { type: "pull-wake", pattern: "a/*", wake_stream: "b/secret" })).status).toBe(403);
      const ok = await call("jwt", "PUT", sub("jay"), { type: "pull-wake", pattern: "a/*", wake_stream: "a/wake" });
      expect(ok.status).toBe(201);
      expect(paths(await ok.json())).toEqual(["a/wake", "a/x"]);
      // Re-confirmed by a newer token of the same subject: the same subscription.
      jwt = await signJwt({ sub: "jay", ds_allow: [{ paths: ["a/**"], ops: ["read", "append"] }, SUBS] }, { expiresIn: "20m" });
      expect((await call("jwt", "PUT", sub("jay"), { type: "pull-wake", pattern: "a/*", wake_stream: "a/wake" })).status).toBe(200);
      // Someone who may read b/secret still cannot add it: it is outside the subscription's scope.
      const added = await call("owner", "POST", sub("jay", "/streams"), { streams: ["b/secret"] });
      expect(added.status).toBe(403);
      expect(await added.text()).toContain("outside this subscription's scope");
    }, TEST_TIMEOUT_MS);

    test("a callback with a bad token is refused before its body is read", async () => {
      // Headers announce 1 MiB; only a few bytes follow, and the rest never comes.
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(server.port, "127.0.0.1");
        let got = "";
        const timer = setTimeout(() => {
          socket.destroy();
          resolve(got);
        }, 3_000);
        socket.on("data", (b) => {
          got += b.toString("latin1");
          if (got.includes("\r\n\r\n")) {
            clearTimeout(timer);
            socket.destroy();
            resolve(got);
          }
        });
        socket.on("error", reject);
        socket.write(
          `POST /v1/stream/${sub("evil", "/callback")} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer not-a-token\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n{"wake_id":`,
        );
      });
      expect(answer).toStartWith("HTTP/1.1 401");
      expect(Date.now() - started).toBeLessThan(2_000);
    }, TEST_TIMEOUT_MS);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => Promise<boolean>, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(50);
  }
}
