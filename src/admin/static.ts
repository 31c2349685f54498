// Serves the Inspector page (the top-level ui/ folder: plain HTML, CSS and ES modules, no
// build step, nothing from a CDN) from memory. Only files found in ui/ at start-up are
// served, so no request path can reach anything else on disk.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { respond } from "../http/respond.ts";

export const UI_ROOT = "/ui/";
const UI_DIR = fileURLToPath(new URL("../../ui/", import.meta.url));

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
};

// The page talks only to its own origin; nothing inline, nothing from elsewhere.
const PAGE_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  // Revalidate every time: a new server version must never run an old page.
  "Cache-Control": "no-cache",
};

interface Asset {
  body: Uint8Array;
  type: string;
  etag: string;
}

function load(dir: string, prefix = ""): Map<string, Asset> {
  const files = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) {
      for (const [k, v] of load(full, `${prefix}${name}/`)) files.set(k, v);
      continue;
    }
    const type = TYPES[name.split(".").pop() ?? ""];
    if (!type) continue;
    const body = new Uint8Array(readFileSync(full));
    files.set(prefix + name, { body, type, etag: `"${body.byteLength.toString(36)}-${hash(body)}"` });
  }
  return files;
}

function hash(bytes: Uint8Array): string {
  // FNV-1a: enough to tell versions of a file apart for revalidation.
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0).toString(36);
}

let assets: Map<string, Asset> | undefined;

export function serveUi(request: Request, path: string): Response {
  // A deployment without ui/ serves the API alone: the page is a 404, never a 500.
  assets ??= existsSync(UI_DIR) ? load(UI_DIR) : new Map();
  const rel = path.slice(UI_ROOT.length) || "index.html";
  const asset = assets.get(rel);
  if (!asset) return respond(404, { "Content-Type": "text/plain; charset=utf-8" }, "not found");
  const headers = { ...PAGE_HEADERS, "Content-Type": asset.type, ETag: asset.etag };
  if (request.headers.get("if-none-match") === asset.etag) return respond(304, headers);
  return respond(200, headers, request.method === "HEAD" ? null : asset.body);
}

export function redirectToUi(): Response {
  return respond(302, { Location: UI_ROOT, "Cache-Control": "no-cache" });
}
