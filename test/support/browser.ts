// Headless Chromium for the Inspector tests: Debian's chromium package driven by
// playwright-core (no browser download). CHROMIUM_BIN overrides the binary. Without one the
// browser tests are skipped with a warning, except in CI (CI=true), where .ci/run installs
// chromium and a missing browser must fail the run rather than pass it quietly.
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
/** Whether the browser tests run: chromium is there, or CI demands them (launch then fails loudly). */
export const haveChromium = existsSync(CHROMIUM_BIN) || process.env.CI === "true";

/** Where the tests leave their screenshots (INSPECTOR_SCREENSHOTS, or a temporary folder). */
export const SCREENSHOT_DIR = process.env.INSPECTOR_SCREENSHOTS ?? join(tmpdir(), "inspector-screenshots");

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}
