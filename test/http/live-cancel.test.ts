// A live read ends when its client goes away, on both runtimes: the server drops the SSE
// reader or long-poll waiter at once (its /healthz counts fall back), not at the next
// keep-alive or timeout. Deno's request.signal also aborts after every successful
// response unless the legacy behaviour is off (deno.json: "unstable": ["no-legacy-abort"]),
// so SSE ends through its body's cancel() and the server must not warn about the legacy
// behaviour.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rawGet } from "../support/http1.ts";
import { spawnAhead } from "../support/spawn-ahead.ts";
import { type Runtime, type SpawnedServer } from "../support/spawn-server.ts";

interface Health {
  liveWaiters: number;
  sseReaders: number;
}

async function health(s: SpawnedServer): Promise<Health> {
  return (await (await fetch(`${s.url}/healthz`)).json()) as Health;
}

/** Polls the server's own counts (it has no push channel for them) until `ok`, for up to 3 s. */
async function untilHealth(s: SpawnedServer, ok: (h: Health) => boolean, what: string): Promise<Health> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const h = await health(s);
    if (ok(h)) return h;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`live reads end when the client goes away (${runtime})`, () => {
    let server: SpawnedServer;
    const ahead = spawnAhead({ runtime, quiet: true, env: { LONG_POLL_TIMEOUT_MS: "60000", SSE_MAX_LIFETIME_MS: "60000" } });
    beforeAll(async () => {
      // Long enough that neither a long-poll timeout nor an SSE lifetime can end a read here.
      server = await ahead();
    }, 90_000);
    afterAll(() => server?.stop(), 30_000);

    const create = async (name: string) => {
      const res = await fetch(`${server.url}/v1/stream/${name}`, { method: "PUT", headers: { "Content-Type": "text/plain" } });
      expect(res.status).toBe(201);
      return res.headers.get("stream-next-offset")!;
    };

    test("SSE: a disconnected reader leaves its hub", async () => {
      const tail = await create(`sse-${runtime}`);
      const reqs = Array.from({ length: 3 }, () => rawGet(server.port, `/v1/stream/sse-${runtime}?offset=${tail}&live=sse`));
      for (const r of reqs) expect((await r.head).status).toBe(200);
      await untilHealth(server, (h) => h.sseReaders === 3, "3 SSE readers");
      for (const r of reqs) r.destroy();
      await untilHealth(server, (h) => h.sseReaders === 0 && h.liveWaiters === 0, "the SSE readers to be dropped");
    }, 30_000);

    test("long-poll: a disconnected waiter is dropped", async () => {
      const tail = await create(`lp-${runtime}`);
      const reqs = Array.from({ length: 3 }, () => rawGet(server.port, `/v1/stream/lp-${runtime}?offset=${tail}&live=long-poll`));
      await Promise.all(reqs.map((r) => r.sent));
      await untilHealth(server, (h) => h.liveWaiters === 3, "3 long-poll waiters");
      for (const r of reqs) r.destroy();
      await untilHealth(server, (h) => h.liveWaiters === 0, "the long-poll waiters to be dropped");
      // the stream still works: an append reaches a new long-poll
      const lp = rawGet(server.port, `/v1/stream/lp-${runtime}?offset=${tail}&live=long-poll`);
      await untilHealth(server, (h) => h.liveWaiters === 1, "a new long-poll");
      expect((await fetch(`${server.url}/v1/stream/lp-${runtime}`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" })).status).toBe(204);
      const done = await lp.done;
      expect(done.status).toBe(200);
      expect(done.body).toBe("x");
    }, 30_000);

    test("no legacy request.signal warning", () => {
      expect(server.output()).not.toContain("legacy behavior");
    });
  });
}
