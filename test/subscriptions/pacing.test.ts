// Wake pacing (SUBSCRIPTION_WAKE_INTERVAL_MS, here 300 ms), on one instance with embedded
// PGlite and a real webhook receiver that answers {"done":true}: a subscription whose stream
// is written all the time is woken about once per interval (after a burst of two) and still
// gets every append; one written less often than that is woken at once, every time.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { freshDataDir } from "../support/spawn-server.ts";
import { loadConfig } from "../../src/settings.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { until } from "../support/poll.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

const INTERVAL_MS = 300;
let server: RunningServer;
let base: string;
let hook: Receiver;
const dataDir = freshDataDir(); // a migrated PGlite folder

beforeAll(async () => {
  server = await startServer(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", PORT: "0", DATA_DIR: dataDir, SUBSCRIPTION_WAKE_INTERVAL_MS: String(INTERVAL_MS) }));
  base = `${server.url}/v1/stream`;
  hook = await startReceiver();
  hook.answer = () => ({ body: { done: true } });
}, 60_000);
afterAll(async () => {
  await hook.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const offset = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;
const append = async (path: string, body: string, method = "POST") => {
  const res = await fetch(`${base}/${path}`, { method, headers: { "content-type": "text/plain" }, body });
  expect(res.status).toBeLessThan(300);
  return res.headers.get("stream-next-offset")!;
};
const subscribe = async (id: string, pattern: string) => {
  const res = await fetch(`${base}/__ds/subscriptions/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "webhook", pattern, webhook: { url: hook.url } }),
  });
  expect(res.status).toBe(201);
};
const wakesOf = (id: string) => hook.deliveries.filter((d) => d.body.subscription_id === id);

test("a stream written all the time: about one wake per interval, every append delivered", async () => {
  await append("busy/a", "", "PUT");
  await subscribe("busy", "busy/*");
  const started = Date.now();
  let last = "";
  while (Date.now() - started < 2_000) {
    last = await append("busy/a", "x");
    await sleep(10);
  }
  const elapsed = Date.now() - started;
  // Every append reaches the worker: some wake ends at the last one and is acked.
  await until(() => (wakesOf("busy").some((d) => d.body.streams[0].tail_offset === last) ? true : undefined), 5_000, "a wake up to the last append");
  const wakes = wakesOf("busy");
  // A burst of two, then one per interval (the last one may come after the loop).
  expect(wakes.length).toBeLessThanOrEqual(2 + Math.ceil(elapsed / INTERVAL_MS) + 1);
  // ... and not starved: more than the burst.
  expect(wakes.length).toBeGreaterThanOrEqual(3);
  // Each wake covers everything up to its snapshot, so the wakes' ranges join end to end.
  for (let i = 1; i < wakes.length; i++) expect(wakes[i].body.streams[0].acked_offset).toBe(wakes[i - 1].body.streams[0].tail_offset);
}, 30_000);

test("a stream written less often than the interval: woken at once every time", async () => {
  await append("calm/a", "", "PUT");
  await subscribe("calm", "calm/*");
  for (let i = 1; i <= 4; i++) {
    const from = hook.deliveries.length;
    const sent = Date.now();
    const tail = await append("calm/a", "x");
    const d = await hook.next((x) => x.body.subscription_id === "calm" && x.body.streams[0].tail_offset === tail, 5_000, from);
    // Not held back to any schedule (a paced wake would come about an interval later).
    expect(d.at - sent).toBeLessThan(INTERVAL_MS * 0.8);
    await sleep(INTERVAL_MS + 50);
  }
  expect(wakesOf("calm").length).toBe(4);
  expect(wakesOf("calm")[3].body.streams[0].tail_offset).toBe(offset(4));
}, 30_000);

test("pull-wake: a worker may take a wake before it is due and end it; the next append still wakes", async () => {
  // Its own server with a 1 s interval, so the third wake is surely paced.
  const dir = freshDataDir();
  const own = await startServer(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", PORT: "0", DATA_DIR: dir, SUBSCRIPTION_WAKE_INTERVAL_MS: "1000" }));
  try {
    await pullWakeEndsEarly(own);
  } finally {
    await own.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

async function pullWakeEndsEarly(own: RunningServer): Promise<void> {
  const base = `${own.url}/v1/stream`;
  const append = async (path: string, body: string, method = "POST") => {
    expect((await fetch(`${base}/${path}`, { method, headers: { "content-type": "text/plain" }, body })).status).toBeLessThan(300);
  };
  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${base}/__ds/subscriptions/pp${path}`, {
      method: path ? "POST" : "PUT",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  await fetch(`${base}/wake/pp`, { method: "PUT", headers: { "content-type": "application/json" } });
  expect((await post("", { type: "pull-wake", streams: ["pp/a"], wake_stream: "wake/pp" })).status).toBe(201);
  const events = async () => (await (await fetch(`${base}/wake/pp?offset=-1`)).json()) as { generation: number }[];
  const work = async () => {
    const claim = await post("/claim", { worker: "w" });
    expect(claim.status).toBe(200);
    const c = await claim.json();
    const acks = c.streams.map((s: { path: string; tail_offset: string }) => ({ stream: s.path, offset: s.tail_offset }));
    expect((await post("/ack", { wake_id: c.wake_id, generation: c.generation, acks, done: true }, c.token)).status).toBe(200);
    return c.generation as number;
  };
  await append("pp/a", "1", "PUT");
  // The first two wakes (the burst) are started by the appends' trigger and delivered as
  // wake events; the worker waits for each, so its claim does not start the wake itself.
  const delivered = (n: number) => until(async () => ((await events()).length >= n ? true : undefined), 5_000, `wake event ${n}`);
  await delivered(1);
  await work();
  await append("pp/a", "2");
  await delivered(2);
  await work();
  await append("pp/a", "3"); // paced: due up to one interval from now ...
  await until(async () => {
    const s = await (await fetch(`${own.url}/v1/admin/subscriptions/pp`)).json();
    return s.wakeId && Date.parse(s.delivery.nextAttemptAt) > Date.now() ? true : undefined;
  }, 3_000, "the paced wake to start");
  const early = await work(); // ... and the worker takes it (and ends it) before it is due
  await append("pp/a", "4");
  const next = await until(async () => (await events()).find((e) => e.generation > early), 5_000, "a wake for the append after the early end");
  expect(next.generation).toBe(early + 1);
}
