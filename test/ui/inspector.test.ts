// The Inspector page in real headless Chromium against a real server (embedded PGlite):
// create a stream and append through the page's forms, page through 10,000 messages, a
// binary stream as hex, errors in the server's words, close/fork/delete behind a
// confirmation, and the bearer token kept in sessionStorage only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { loadConfig } from "../../src/settings.ts";
import { fromMigratedDump } from "../support/backends.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { haveChromium, launchBrowser, SCREENSHOT_DIR } from "../support/browser.ts";

if (!haveChromium) console.warn("test/ui/inspector.test.ts: SKIPPED — no chromium (install Debian's chromium or set CHROMIUM_BIN)");

/** Per test: Chromium on a busy 2-core machine is slow; each wait inside has its own bound. */
const TEST_TIMEOUT_MS = 30_000;

let server: RunningServer;
let browser: Browser;
let page: Page;

const put = (name: string, headers: Record<string, string>, body?: BodyInit) =>
  fetch(`${server.url}/v1/stream/${name}`, { method: "PUT", headers, body });

/** Creates a stream through the protocol, then opens the page at `route` (the list by default). */
async function createThenOpen(name: string, contentType: string, body: BodyInit, route = "/"): Promise<void> {
  expect((await put(name, { "Content-Type": contentType }, body)).status).toBe(201);
  await page.goto(`${server.url}/ui/#${route}`);
}

describe.skipIf(!haveChromium)("Inspector in Chromium", () => {
  beforeAll(async () => {
    [server, browser] = await Promise.all([fromMigratedDump().then((o) => startServer(loadConfig({ PORT: "0", DATA_DIR: "memory://" }), o)), launchBrowser()]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 30_000);

  test("create a JSON stream and append from the form; the message shows", async () => {
    await page.goto(`${server.url}/`);
    expect(new URL(page.url()).pathname).toBe("/ui/");
    await page.getByText("No streams yet.").waitFor();

    await page.getByTestId("new-stream").click();
    await page.getByTestId("create-name").fill("orders/eu");
    await page.getByTestId("create-type").fill("application/json");
    await page.getByTestId("dialog-submit").click();
    await expect(page.getByTestId("stream-name").textContent()).resolves.toBe("orders/eu");

    await page.getByTestId("append-body").fill('{"id": 1, "item": "book", "qty": 2}');
    await page.getByTestId("append-submit").click();
    const row = page.locator('[data-testid=content] tbody tr[data-position="0"]');
    await row.waitFor();
    expect(await row.locator("pre").textContent()).toBe('{\n  "id": 1,\n  "item": "book",\n  "qty": 2\n}');
    // The append went through the protocol: a plain read sees it.
    const read = await fetch(`${server.url}/v1/stream/orders/eu?offset=-1`);
    expect(await read.json()).toEqual([{ id: 1, item: "book", qty: 2 }]);

    // An array appends several messages, each its own row with its own offset.
    await page.getByTestId("append-body").fill('[{"id": 2}, {"id": 3}]');
    await page.getByTestId("append-submit").click();
    await page.locator('[data-testid=content] tbody tr[data-position="2"]').waitFor();
    await expect(page.getByTestId("range").textContent()).resolves.toBe("messages 0–2 of 3");
    await page.screenshot({ path: join(SCREENSHOT_DIR, "stream.png"), fullPage: true });

    await page.goto(`${server.url}/ui/#/`);
    await page.locator('tr[data-name="orders/eu"]').waitFor();
  }, TEST_TIMEOUT_MS);

  test("page through a 10,000-message stream from any offset", async () => {
    const messages = Array.from({ length: 10_000 }, (_, n) => ({ n, sku: `item-${n}` }));
    await createThenOpen("big", "application/json", JSON.stringify(messages), "/s/big");
    const range = page.getByTestId("range");
    const firstRow = page.locator("[data-testid=content] tbody tr").first();
    const lastRow = page.locator("[data-testid=content] tbody tr").last();
    const shows = async (text: string) => {
      await page.waitForFunction((t) => document.querySelector("[data-testid=range]")?.textContent === t, text);
    };
    await shows("messages 0–99 of 10,000");
    expect(await page.locator("[data-testid=content] tbody tr").count()).toBe(100);

    await page.getByTestId("next").click();
    await shows("messages 100–199 of 10,000");
    expect(await firstRow.getAttribute("data-position")).toBe("100");

    await page.getByTestId("last").click();
    await shows("messages 9,900–9,999 of 10,000");
    expect(JSON.parse((await lastRow.locator("pre").textContent())!)).toEqual({ n: 9999, sku: "item-9999" });
    expect(await page.getByTestId("next").isDisabled()).toBe(true);

    // Any offset: a position, or a protocol offset token.
    await page.getByTestId("goto").fill("5000");
    await page.getByTestId("goto").press("Enter");
    await shows("messages 5,000–5,099 of 10,000");
    expect(JSON.parse((await firstRow.locator("pre").textContent())!)).toEqual({ n: 5000, sku: "item-5000" });
    await page.getByTestId("prev").click();
    await shows("messages 4,900–4,999 of 10,000");

    await page.getByTestId("goto").fill("0000000000000000_0000000000007777");
    await page.getByTestId("goto").press("Enter");
    await shows("messages 7,777–7,876 of 10,000");
    expect(JSON.parse((await firstRow.locator("pre").textContent())!).n).toBe(7777);
    // The position is in the hash, so the page can be linked and reloaded.
    await page.reload();
    await shows("messages 7,777–7,876 of 10,000");
    await page.screenshot({ path: join(SCREENSHOT_DIR, "paging.png") });
  }, TEST_TIMEOUT_MS);

  test("a binary stream renders as hex + ASCII with byte offsets", async () => {
    const bytes = new Uint8Array([...Array.from({ length: 20 }, (_, i) => i), ...new TextEncoder().encode("Hello, streams!")]);
    await createThenOpen("blob", "application/octet-stream", bytes, "/s/blob");
    const hex = page.getByTestId("hex").first();
    await hex.waitFor();
    const lines = (await hex.textContent())!.split("\n");
    expect(lines[0]).toBe("00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|");
    expect(lines[1]).toBe("00000010  10 11 12 13 48 65 6c 6c  6f 2c 20 73 74 72 65 61  |....Hello, strea|");
    expect(lines[2]).toBe("00000020  6d 73 21                                          |ms!             |");

    // Appending hex from the form adds bytes at the next byte offset.
    await page.getByTestId("append-body").fill("de ad be ef");
    await page.getByTestId("append-submit").click();
    await page.locator('[data-testid=content] tbody tr[data-position="35"]').waitFor();
    expect(await page.locator('[data-testid=content] tbody tr[data-position="35"] pre').textContent()).toBe(
      "00000020           de ad be ef                              |   ....         |",
    );
    await page.screenshot({ path: join(SCREENSHOT_DIR, "binary.png"), fullPage: true });
  }, TEST_TIMEOUT_MS);

  test("prefix search, typed as people write names", async () => {
    await createThenOpen("café/menu", "text/plain", "soup");
    await page.locator('tr[data-name="orders/eu"]').waitFor();
    await page.getByTestId("prefix").fill("café");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=stream-table] tbody tr[data-name]").length === 1);
    const row = page.locator("[data-testid=stream-table] tbody tr");
    expect(await row.getAttribute("data-name")).toBe("caf%C3%A9/menu"); // stored as the URL path
    expect(await row.locator("a.name").textContent()).toBe("café/menu"); // shown as people write it
    await page.getByTestId("prefix").fill("ord");
    await page.waitForFunction(() => document.querySelector("[data-testid=stream-table] tbody tr")?.getAttribute("data-name") === "orders/eu");
    expect(await page.locator("[data-testid=stream-table] tbody tr").count()).toBe(1);
  }, TEST_TIMEOUT_MS);

  test("server errors are shown in the server's words", async () => {
    await createThenOpen("typed", "text/plain", "x");
    await page.getByTestId("new-stream").click();
    await page.getByTestId("create-name").fill("typed");
    await page.getByTestId("create-type").fill("application/json");
    await page.getByTestId("dialog-submit").click();
    const error = page.locator("dialog .error");
    await error.waitFor();
    expect(await error.textContent()).toBe("creating typed: 409 Conflict — stream already exists with a different configuration");

    await page.goto(`${server.url}/ui/#/s/nope`);
    expect(await page.getByTestId("load-error").textContent()).toBe("loading nope: 404 Not Found — stream not found");
  }, TEST_TIMEOUT_MS);

  test("close, fork and delete ask for confirmation first", async () => {
    await createThenOpen("life", "application/json", '[{"a":1},{"a":2}]', "/s/life");
    await page.getByTestId("close").click();
    // Cancelling changes nothing.
    await page.getByRole("button", { name: "Cancel" }).click();
    expect((await fetch(`${server.url}/v1/stream/life`, { method: "HEAD" })).headers.get("stream-closed")).toBeNull();
    await page.getByTestId("close").click();
    await page.getByTestId("confirm-ok").click();
    await page.locator(".badge.closed").waitFor();
    expect((await fetch(`${server.url}/v1/stream/life`, { method: "HEAD" })).headers.get("stream-closed")).toBe("true");

    await page.getByTestId("fork").click();
    await page.getByTestId("fork-name").fill("life-copy");
    await page.getByTestId("fork-offset").fill("0000000000000000_0000000000000001");
    await page.getByTestId("dialog-submit").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=stream-name]")?.textContent === "life-copy");
    await page.locator('[data-testid=content] tbody tr[data-position="0"]').waitFor();
    expect(await page.locator("[data-testid=content] tbody tr").count()).toBe(1);

    await page.goto(`${server.url}/ui/#/s/life-copy`);
    await page.getByTestId("delete").click();
    await page.getByTestId("confirm-ok").click();
    await page.waitForFunction(() => location.hash === "#/");
    expect((await fetch(`${server.url}/v1/stream/life-copy`, { method: "HEAD" })).status).toBe(404);
  }, TEST_TIMEOUT_MS);

  test("a bearer token is sent on every request and kept in sessionStorage only", async () => {
    const seen: (string | undefined)[] = [];
    const onRequest = (r: { url(): string; headers(): Record<string, string> }) => {
      if (r.url().includes("/v1/")) seen.push(r.headers().authorization);
    };
    page.on("request", onRequest);
    await page.goto(`${server.url}/ui/#/`);
    // Every stream the tests made, for the README's picture of the list.
    await page.locator('tr[data-name="orders/eu"]').waitFor();
    await page.screenshot({ path: join(SCREENSHOT_DIR, "list.png"), clip: { x: 0, y: 0, width: 1280, height: 440 } });
    await page.getByTestId("token").fill("s3cret");
    await page.getByTestId("token").press("Enter");
    await page.getByTestId("token").blur();
    seen.length = 0;
    await page.goto(`${server.url}/ui/#/s/orders/eu`);
    await page.locator('[data-testid=content] tbody tr[data-position="0"]').waitFor();
    await page.getByTestId("tail-toggle").click(); // the live tail's SSE request too
    await page.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "live");
    page.off("request", onRequest);
    expect(seen.length).toBeGreaterThanOrEqual(3); // describe, content, SSE
    expect(seen.every((h) => h === "Bearer s3cret")).toBe(true);
    const stored = await page.evaluate(() => ({ session: sessionStorage.getItem("inspector.token"), local: localStorage.length }));
    expect(stored).toEqual({ session: "s3cret", local: 0 });
    // A new browser session (context) starts without it.
    const fresh = await browser.newPage();
    await fresh.goto(`${server.url}/ui/`);
    expect(await fresh.evaluate(() => sessionStorage.getItem("inspector.token"))).toBeNull();
    await fresh.close();
  }, TEST_TIMEOUT_MS);
});
