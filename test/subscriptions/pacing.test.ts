// Wake pacing (SUBSCRIPTION_WAKE_INTERVAL_MS, here 300 ms), on one instance with embedded
// PGlite and a real webhook receiver that answers {"done":true}: a subscription whose stream
// is written all the time is woken about once per interval (after a burst of two) and still
// gets every append; one written less often than that is woken at once, every time.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { until } from "../support/poll.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

const INTERVAL_MS = 300;
let server: RunningServer;
let base: string;
let hook: Receiver;
const dataDir = mkdtempSync(join(tmpdir(), "ds-pacing-"));

beforeAll(async () => {
  server = await startServer(loadConfig({ PORT: "0", DATA_DIR: dataDir, SUBSCRIPTION_WAKE_INTERVAL_MS: String(INTERVAL_MS) }));
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
  expect(wakes.length).toBeGreaterThanOrEqual(Math.floor(elapsed / INTERVAL_MS) - 1);
  const gaps = wakes.slice(2).map((d, i) => d.at - wakes[i + 1].at);
  for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(INTERVAL_MS - 30);
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
    expect(d.at - sent).toBeLessThan(INTERVAL_MS / 2);
    await sleep(INTERVAL_MS + 50);
  }
  expect(wakesOf("calm").length).toBe(4);
  expect(wakesOf("calm")[3].body.streams[0].tail_offset).toBe(offset(4));
}, 30_000);
