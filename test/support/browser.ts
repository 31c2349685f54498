// Headless Chromium for the Inspector tests: Debian's chromium package driven by
// playwright-core (no browser download). CHROMIUM_BIN overrides the binary; without one
// the browser tests are skipped with a warning (.ci/run installs chromium, so CI runs them).
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const haveChromium = existsSync(CHROMIUM_BIN);

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
