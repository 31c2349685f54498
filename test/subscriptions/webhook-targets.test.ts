// Where webhooks may go (issue 25.6) and what a dead receiver may cost others (issue 25.8),
// against the real server on Bun and on Deno (PGlite each):
//   - by default every spelling of this machine, and private / link-local / CGNAT / IPv6
//     local targets, are refused at creation with a 400 naming the opt-in setting;
//   - with WEBHOOK_ALLOW_PRIVATE_TARGETS=true each of those spellings is accepted and
//     delivered to;
//   - the send connects to the address that was checked, and a kept connection is reused
//     only for that address (pinned-probe.ts, both runtimes);
//   - 32 subscriptions whose receiver never answers do not hold back a healthy one.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { until } from "../support/poll.ts";
import { ROOT, type Runtime, type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

const LOOPBACK = ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "localhost.", "127.0.0.1."];
const OTHERS = ["10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "[::1]", "[::]", "[fd00::1]", "[fe80::1]", "[::ffff:127.0.0.1]"];
const DEAD = 32;

const put = (s: SpawnedServer, path: string, body: unknown, type = "application/json") =>
  fetch(`${s.url}/v1/stream/${path}`, { method: "PUT", headers: { "content-type": type }, body: typeof body === "string" ? body : JSON.stringify(body) });
const webhookSub = (s: SpawnedServer, id: string, url: string, streams = [`${id}/a`]) => put(s, `__ds/subscriptions/${id}`, { type: "webhook", streams, webhook: { url } });

describe.each(["bun", "deno"] as Runtime[])("webhook targets on %s", (runtime) => {
  let strict: SpawnedServer;
  let open: SpawnedServer;
  let hook: Receiver;
  beforeAll(async () => {
    // One after the other: two PGlite start-ups at once on a busy 2-core machine can take a minute.
    strict = await spawnServer({ runtime, quiet: true });
    open = await spawnServer({ runtime, quiet: true, env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", SUBSCRIPTION_WAKE_INTERVAL_MS: "0" } });
    hook = await startReceiver();
    hook.answer = () => ({ body: { done: true } });
  }, 150_000);
  afterAll(async () => {
    await Promise.all([strict?.stop(), open?.stop()]);
    await hook?.close();
  });

  test("by default loopback and private targets are refused at creation, in every spelling, and nothing is stored", async () => {
    const port = new URL(hook.url).port;
    const urls = [...LOOPBACK.flatMap((h) => [`http://${h}:${port}/hook`, `https://${h}/v1/stream/prod/events`]), ...OTHERS.map((h) => `https://${h}/x`)];
    for (const [i, url] of urls.entries()) {
      const res = await webhookSub(strict, `s${i}`, url);
      const body = await res.json();
      expect([url, res.status, body.error?.code]).toEqual([url, 400, "WEBHOOK_URL_REJECTED"]);
      expect(body.error.message).toContain("WEBHOOK_ALLOW_PRIVATE_TARGETS=true");
      expect((await fetch(`${strict.url}/v1/stream/__ds/subscriptions/s${i}`)).status).toBe(404);
    }
  }, 60_000);

  test("WEBHOOK_ALLOW_PRIVATE_TARGETS=true: each loopback spelling is accepted and delivered to", async () => {
    const port = new URL(hook.url).port;
    for (const [i, host] of LOOPBACK.entries()) {
      const id = `ok${i}`;
      expect((await webhookSub(open, id, `http://${host}:${port}/hook`)).status).toBe(201);
      expect((await put(open, `${id}/a`, [1])).status).toBe(201);
      await hook.next((d) => d.body.subscription_id === id, 10_000);
    }
  }, 60_000);

  test("the send connects to the checked address (a name that resolves nowhere, pinned to 127.0.0.1, then .2), over one kept connection per address", () => {
    const args = runtime === "bun" ? ["test/subscriptions/pinned-probe.ts"] : ["run", "-A", "test/subscriptions/pinned-probe.ts"];
    const r = spawnSync(join(ROOT, "node_modules/.bin", runtime), args, { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out).toMatchObject({ ok: true, status: 200, seen: { path: "/hook?x=1", body: '{"a":1}' } });
    expect(out.seen.host).toStartWith("hooks.invalid:");
    // Kept connections: one per checked address, never one to another address (issue 30.3).
    // Deno opens one per send (src/subscriptions/send.ts: it re-sent a cut request on a kept one).
    expect(out.reached).toEqual(["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1"]);
    expect(out.accepted).toEqual(runtime === "bun" ? [1, 1] : [3, 1]);
    // A send cut by its signal fails then, and reaches the receiver once.
    expect(out.cut).toStartWith("failed:");
    expect(out.cutAfterMs).toBeLessThan(1_500);
    expect(out.slowSeen).toBe(1);
  }, 30_000);

  test(`${DEAD} subscriptions to a receiver that never answers do not hold back a healthy one`, async () => {
    const dead = await startReceiver();
    dead.answer = () => ({ delayMs: 60_000 });
    try {
      for (let i = 0; i < DEAD; i++) expect((await webhookSub(open, `dead${i}`, dead.url)).status).toBe(201);
      expect((await webhookSub(open, "alive", hook.url)).status).toBe(201);
      for (let i = 0; i < DEAD; i++) expect((await put(open, `dead${i}/a`, [1])).status).toBe(201);
      // The dead receiver has all the sends it will get for now (its share, or every slot).
      await until(() => (dead.deliveries.length >= 8 ? true : undefined), 15_000, "sends to the dead receiver");
      await new Promise((r) => setTimeout(r, 500));
      const openSends = dead.deliveries.filter((d) => d.closedAt === undefined).length;
      const sent = Date.now();
      expect((await put(open, "alive/a", [1])).status).toBe(201);
      const d = await hook.next((x) => x.body.subscription_id === "alive", 30_000);
      const delay = d.at - sent;
      console.log(`${runtime}: ${openSends} sends open to the dead receiver; the healthy webhook arrived ${delay} ms after its append`);
      expect(openSends).toBeLessThanOrEqual(8); // WEBHOOK_HOST_CONCURRENCY's default
      expect(delay).toBeLessThan(1_000);
    } finally {
      await dead.close();
    }
  }, 60_000);
});
