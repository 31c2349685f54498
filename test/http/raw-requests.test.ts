// Requests that only a raw socket can send: short Host headers, HTTP/1.0 without Host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import net from "node:net";
import { type TokenFixture, writeTokenFile } from "../support/auth.ts";
import { type SpawnedServer, spawnServer } from "../support/spawn-server.ts";

let server: SpawnedServer;
let fx: TokenFixture;
let auth = "";
// Starting a server (PGlite, migrations) takes seconds on a loaded machine: above bun's 5 s default.
// With auth on: without it, only loopback Host names are served (test/http/loopback-only.test.ts).
beforeAll(async () => {
  fx = writeTokenFile([{ name: "root", allow: [{ paths: ["**"], ops: ["read", "append", "create", "delete"] }] }]);
  auth = `Authorization: Bearer ${fx.tokens.root}\r\n`;
  server = await spawnServer({ quiet: true, env: { AUTH_TOKENS_FILE: fx.file } });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  fx?.cleanup();
}, 30_000);

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.end(text));
    let out = "";
    sock.on("data", (d) => (out += d.toString("latin1")));
    sock.on("close", () => resolve(out));
    sock.on("error", reject);
  });
}

test("a Host shorter than 4 characters still reaches the stream routes", async () => {
  for (const host of ["a", "ab", "api", "api:8080"]) {
    const res = await raw(server.port, `PUT /v1/stream/short-host HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 20[01] /);
  }
  const created = await raw(server.port, `PUT /v1/stream/short-host-2 HTTP/1.1\r\nHost: api\r\n${auth}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  expect(created).toContain("Location: http://api/v1/stream/short-host-2");
});

test("HTTP/1.0 without a Host header gets a 4xx, not a 500", async () => {
  const res = await raw(server.port, "GET /v1/stream/short-host HTTP/1.0\r\n\r\n");
  expect(res).toMatch(/^HTTP\/1\.[01] 4\d\d /);
});
