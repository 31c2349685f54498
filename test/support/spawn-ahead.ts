// Servers started when a test file loads, not in the beforeAll of the describe block that
// uses them: in a file with one block per runtime, the second block's server starts while
// the first block's tests run (mostly waiting on sockets and timers), instead of after them.
// Kept out of spawn-server.ts, which the conformance run (vitest) imports too.
import { afterAll } from "bun:test";
import { type SpawnedServer, type SpawnOptions, spawnServer } from "./spawn-server.ts";

/**
 * Starts a server now (as soon as `opts` is known); the returned function gives it, or its
 * start-up failure. Stopped after the file.
 */
export function spawnAhead(opts: SpawnOptions | Promise<SpawnOptions>): () => Promise<SpawnedServer> {
  const started = Promise.resolve(opts).then(spawnServer);
  // Awaited (and a failure reported) by the block that uses it; until then it is not unhandled.
  started.catch(() => {});
  afterAll(async () => {
    await (await started.catch(() => undefined))?.stop();
  }, 30_000);
  return () => started;
}
