// The Inspector across instances, in real headless Chromium: two server processes on one
// Postgres schema, A on Bun and B on Deno (so both runtimes serve the page and its live
// tail), behind a round-robin nginx. A page on instance A appends from its form;
// pages tailing the stream live, one through nginx and one on instance B directly, see the
// row appear (SSE through the proxy, wake-up through LISTEN/NOTIFY). Pausing a tail stops
// rows; resuming catches up from where it paused.
// Needs DATABASE_URL (and chromium); skipped without them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { type LoadBalancer, startNginx } from "../support/nginx.ts";
import { type SpawnedServer, spawnServer } from "../support/spawn-server.ts";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";
import { haveChromium, launchBrowser, SCREENSHOT_DIR } from "../support/browser.ts";

const TIMEOUT_MS = 90_000;
/** A cross-instance wake-up: NOTIFY, far below the backstop (BACKSTOP_MS is 30 s here). */
const DELIVERY_BOUND_MS = 5_000;
const run = Boolean(databaseUrl) && haveChromium;
if (!run) console.warn("test/ui/inspector-cluster.test.ts: SKIPPED — needs DATABASE_URL and chromium");

describe.skipIf(!run)("Inspector live tail across a Bun and a Deno instance behind nginx", () => {
  const schema = uniqueSchema("uilive");
  let cluster: { instances: SpawnedServer[]; lb?: LoadBalancer };
  let browser: Browser;
  let writer: Page;
  let viaNginx: Page;
  let onB: Page;

  beforeAll(async () => {
    const spawn = (runtime: "bun" | "deno") =>
      spawnServer({ runtime, databaseUrl: databaseUrl!, schema, env: { BACKSTOP_MS: "30000" }, quiet: true });
    let instances: SpawnedServer[];
    [instances, browser] = await Promise.all([Promise.all([spawn("bun"), spawn("deno")]), launchBrowser()]);
    cluster = { instances, lb: await startNginx(instances.map((i) => i.port)) };
    const res = await fetch(`${cluster.instances[0].url}/v1/stream/tail/demo`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: '[{"event":"created"}]',
    });
    expect(res.status).toBe(201);
    const open = async (base: string) => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}/ui/#/s/tail/demo`);
      await page.getByTestId("stream-name").waitFor();
      return page;
    };
    [writer, viaNginx, onB] = await Promise.all([open(cluster.instances[0].url), open(cluster.lb!.url), open(cluster.instances[1].url)]);
  }, TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await cluster?.lb?.stop();
    await Promise.all(cluster?.instances.map((i) => i.stop()) ?? []);
    await dropSchema(schema);
  }, TIMEOUT_MS);

  const tailRows = (page: Page) => page.locator("[data-testid=tail] tbody tr");
  const waitLive = (page: Page) =>
    page.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "live", undefined, { timeout: 10_000 });

  async function appendFromForm(body: string) {
    await writer.getByTestId("append-body").fill(body);
    await writer.getByTestId("append-submit").click();
  }

  test("an append on one instance appears in live tails on the others", async () => {
    for (const page of [viaNginx, onB]) {
      await page.getByTestId("tail-toggle").click();
      await waitLive(page);
    }
    const t0 = performance.now();
    await appendFromForm('{"event": "shipped", "id": 42}');
    for (const page of [viaNginx, onB]) {
      const row = page.locator('[data-testid=tail] tbody tr[data-position="1"]');
      await row.waitFor({ timeout: DELIVERY_BOUND_MS });
      expect(JSON.parse((await row.locator("pre").textContent())!)).toEqual({ event: "shipped", id: 42 });
    }
    console.log(`append on A to row shown via nginx and on B: ${Math.round(performance.now() - t0)} ms`);
    expect(await tailRows(viaNginx).count()).toBe(1);
    // B holds the SSE reader of the page opened on B: its admin view counts it.
    const detail = await (await fetch(`${cluster.instances[1].url}/v1/admin/streams/tail/demo`)).json();
    expect(detail.liveReaders.sse).toBeGreaterThanOrEqual(1);
    await viaNginx.screenshot({ path: join(SCREENSHOT_DIR, "live-tail.png"), fullPage: true });
  }, TIMEOUT_MS);

  test("a paused tail shows nothing new; resuming catches up in order", async () => {
    await onB.getByTestId("tail-toggle").click(); // pause
    await onB.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "paused");
    await appendFromForm('[{"event": "packed"}, {"event": "delivered"}]');
    // The unpaused tail gets both rows; then the paused one still has only the first.
    await viaNginx.locator('[data-testid=tail] tbody tr[data-position="3"]').waitFor({ timeout: DELIVERY_BOUND_MS });
    expect(await tailRows(onB).count()).toBe(1);
    await onB.getByTestId("tail-toggle").click(); // resume
    await onB.locator('[data-testid=tail] tbody tr[data-position="3"]').waitFor({ timeout: DELIVERY_BOUND_MS });
    const positions = await tailRows(onB).evaluateAll((rows) => rows.map((r) => r.getAttribute("data-position")));
    expect(positions).toEqual(["1", "2", "3"]);
    expect(JSON.parse((await tailRows(onB).last().locator("pre").textContent())!)).toEqual({ event: "delivered" });
  }, TIMEOUT_MS);
});
