// Runs the protocol's reference server (@durable-streams/server) in its own Node process,
// in memory or file-backed, with webhook subscriptions enabled, so the benchmark compares
// servers and not launchers.
// Usage: node bench/servers/reference.mjs <port> [dataDir]
import { DurableStreamTestServer, FileBackedStreamStore } from "@durable-streams/server";

// The file store keeps 100 append handles by default; an append whose handle is evicted
// before its fsync fails (answered 404), which is most appends once 64 clients spread over
// 1,000 streams. Enough handles for every stream measures the store working as designed.
const MAX_FILE_HANDLES = 4096;

const port = Number(process.argv[2]);
const dataDir = process.argv[3] || undefined;
// Webhook subscriptions are off by default (pull-wake is always on); the subs scenario needs
// them. The switch only decides whether a webhook subscription may be created: with none
// created, appends cost the same either way.
const server = new DurableStreamTestServer({ port, host: "127.0.0.1", webhooks: true });
if (dataDir) server.store = new FileBackedStreamStore({ dataDir, maxFileHandles: MAX_FILE_HANDLES });
await server.start();
console.log(`reference server (${dataDir ? "file" : "memory"}) on ${server.url}`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    // A hung close (open SSE sockets) must not keep the benchmark waiting.
    setTimeout(() => process.exit(0), 3000).unref();
    server.stop().finally(() => process.exit(0));
  });
}
