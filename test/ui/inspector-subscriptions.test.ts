// The Inspector's subscription views in real headless Chromium against a real server
// (embedded PGlite), with subscriptions made through the protocol's control API: the list
// shows webhook and pull-wake subscriptions, the detail view shows each link's acked offset
// beside its stream's tail, marks the links that are behind, and follows an ack.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { loadConfig } from "../../src/settings.ts";
import { fromMigratedDump } from "../support/backends.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { haveChromium, launchBrowser, SCREENSHOT_DIR } from "../support/browser.ts";

if (!haveChromium) console.warn("test/ui/inspector-subscriptions.test.ts: SKIPPED — no chromium (install Debian's chromium or set CHROMIUM_BIN)");

const TEST_TIMEOUT_MS = 30_000;
const offset = (n: number) => `0000000000000000_${String(n).padStart(16, "0")}`;

let server: RunningServer;
let browser: Browser;
let page: Page;

const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
const control = (id: string, rest = "") => `/v1/stream/__ds/subscriptions/${encodeURIComponent(id)}${rest}`;

describe.skipIf(!haveChromium)("Inspector subscriptions in Chromium", () => {
  beforeAll(async () => {
    [server, browser] = await Promise.all([
      fromMigratedDump().then((o) =>
        startServer(loadConfig({ PORT: "0", DATA_DIR: "memory://", SUBSCRIPTION_TICK_MS: "100", SUBSCRIPTION_BACKSTOP_MS: "500", WEBHOOK_ALLOW_PRIVATE_TARGETS: "true" }), o),
      ),
      launchBrowser(),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 30_000);

  test("the list shows subscriptions; the detail view shows links behind, then caught up after an ack", async () => {
    await page.goto(`${server.url}/ui/#/subs`);
    await page.getByText("No subscriptions yet.").waitFor();

    expect((await send("PUT", "/v1/stream/wake/orders", "[]")).status).toBe(201);
    expect((await send("PUT", control("orders-worker"), {
      type: "pull-wake", streams: ["orders/eu", "orders/us"], wake_stream: "wake/orders", lease_ttl_ms: 60_000, description: "ships orders",
    })).status).toBe(201);
    expect((await send("PUT", control("billing-hook"), { type: "webhook", pattern: "billing/*", webhook: { url: "http://127.0.0.1:9/hook" } })).status).toBe(201);
    expect((await send("PUT", "/v1/stream/orders/eu", '[{"id":1},{"id":2},{"id":3}]')).status).toBe(201);
    expect((await send("PUT", "/v1/stream/billing/2026", '[{"invoice":7}]')).status).toBe(201);

    // From the header's section link.
    await page.goto(`${server.url}/ui/#/`);
    await page.getByTestId("nav-subs").click();
    const worker = page.locator('[data-testid=sub-table] tr[data-id="orders-worker"]');
    await worker.waitFor();
    expect(await worker.textContent()).toContain("pull-wake");
    expect(await worker.textContent()).toContain("wake/orders");
    expect(await worker.textContent()).toContain("2 streams");
    const hook = page.locator('[data-testid=sub-table] tr[data-id="billing-hook"]');
    expect(await hook.textContent()).toContain("http://127.0.0.1:9/hook");
    expect(await hook.textContent()).toContain("billing/*");
    expect(await page.getByTestId("nav-subs").getAttribute("class")).toBe("active");
    await page.screenshot({ path: join(SCREENSHOT_DIR, "subscriptions.png"), clip: { x: 0, y: 0, width: 1280, height: 360 } });

    // A worker claims the wake: the detail view shows the holder and the link behind.
    const claim = await (async () => {
      for (let i = 0; i < 200; i++) {
        const r = await send("POST", control("orders-worker", "/claim"), { worker: "packer-1" });
        if (r.status === 200) return (await r.json()) as { wake_id: string; generation: number; token: string };
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("no wake to claim");
    })();
    await worker.locator("a.name").click();
    await expect(page.getByTestId("sub-id").textContent()).resolves.toBe("orders-worker");
    const eu = page.locator('[data-testid=links] tr[data-stream="orders/eu"]');
    const us = page.locator('[data-testid=links] tr[data-stream="orders/us"]');
    await eu.waitFor();
    expect(await eu.getAttribute("class")).toBe("behind");
    expect(await eu.getByTestId("behind").textContent()).toBe("3");
    expect(await us.getAttribute("class")).toBe("missing");
    expect(await us.textContent()).toContain("no stream");
    expect(await page.getByTestId("sub-wake").textContent()).toContain("packer-1");
    expect(await page.getByTestId("link-range").textContent()).toBe("links 1–2 of 2");
    await page.screenshot({ path: join(SCREENSHOT_DIR, "subscription.png"), clip: { x: 0, y: 0, width: 1280, height: 610 } });

    // The worker acks everything and is done: after a refresh the link is caught up.
    const done = await send("POST", control("orders-worker", "/ack"),
      { wake_id: claim.wake_id, generation: claim.generation, acks: [{ stream: "orders/eu", offset: offset(3) }], done: true },
      { authorization: `Bearer ${claim.token}` });
    expect(done.status).toBe(200);
    await page.getByTestId("sub-refresh").click();
    await page.waitForFunction(() => document.querySelector('[data-testid=links] tr[data-stream="orders/eu"] [data-testid=behind]')?.textContent === "0");
    expect(await eu.getAttribute("class")).toBeNull();
    expect(await page.getByTestId("sub-wake").textContent()).not.toContain("packer-1");

    // An unknown id shows the server's answer.
    await page.goto(`${server.url}/ui/#/subs/nobody`);
    await expect(page.getByTestId("load-error").textContent()).resolves.toContain("404");
  }, TEST_TIMEOUT_MS);
});
