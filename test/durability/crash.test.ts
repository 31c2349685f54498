// Kill -9 the server while appends stream in, restart it on the same data, and check that
// every append it acknowledged (2xx) is there, whole, and that producer retries stay
// exactly-once across the crash.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { databaseUrl, dropSchema, uniqueSchema } from "../support/backends.ts";
import { type SpawnOptions, spawnServer } from "../support/spawn-server.ts";

const targets: { name: string; opts: () => SpawnOptions; cleanup: () => Promise<void> | void }[] = [];
{
  const dir = mkdtempSync(join(tmpdir(), "ds-crash-"));
  targets.push({ name: "pglite", opts: () => ({ dataDir: dir }), cleanup: () => rmSync(dir, { recursive: true, force: true }) });
}
if (databaseUrl) {
  const schema = uniqueSchema("crash");
  targets.push({ name: "postgres", opts: () => ({ databaseUrl, schema }), cleanup: () => dropSchema(schema) });
}

afterAll(async () => {
  for (const t of targets) await t.cleanup();
});

for (const target of targets) {
  describe(`crash safety on ${target.name}`, () => {
    test("nothing acknowledged is lost after SIGKILL", async () => {
      let server = await spawnServer({ ...target.opts(), quiet: true });
      const stream = `${server.url}/v1/stream/crash`;
      expect((await fetch(stream, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201);

      const acked: string[] = [];
      const producerAcked: number[] = [];
      let running = true;
      const writer = async (w: number) => {
        for (let i = 0; running; i++) {
          const payload = `[w${w}-${i}]`;
          try {
            const res = await fetch(stream, { method: "POST", headers: { "Content-Type": "text/plain" }, body: payload });
            if (res.status === 204) acked.push(payload);
          } catch {
            return; // the server died mid-request: not acknowledged
          }
        }
      };
      const producer = async () => {
        for (let seq = 0; running; seq++) {
          try {
            const res = await fetch(stream, {
              method: "POST",
              headers: { "Content-Type": "text/plain", "Producer-Id": "crash-p", "Producer-Epoch": "0", "Producer-Seq": String(seq) },
              body: `[p-${seq}]`,
            });
            if (res.status !== 200) return;
            producerAcked.push(seq);
          } catch {
            return;
          }
        }
      };
      const writers = [...Array.from({ length: 16 }, (_, w) => writer(w)), producer()];
      // Kill as soon as a good number of appends were acknowledged, mid-flight.
      while (acked.length < 300) await new Promise((r) => setTimeout(r, 5));
      await server.stop("SIGKILL");
      running = false;
      await Promise.all(writers);

      server = await spawnServer({ ...target.opts(), dataDir: server.dataDir ?? target.opts().dataDir, quiet: true });
      try {
        const body = await (await fetch(`${server.url}/v1/stream/crash?offset=-1`)).text();
        const pieces = body.match(/\[[^\]]*\]/g) ?? [];
        expect(pieces.join("")).toBe(body); // every stored append is whole
        const stored = new Set(pieces);
        const lost = acked.filter((p) => !stored.has(p));
        expect(lost).toEqual([]);
        for (const seq of producerAcked) expect(stored.has(`[p-${seq}]`)).toBe(true);
        // The last acknowledged producer append, retried after the crash, is a duplicate.
        const last = producerAcked[producerAcked.length - 1];
        const retry = await fetch(`${server.url}/v1/stream/crash`, {
          method: "POST",
          headers: { "Content-Type": "text/plain", "Producer-Id": "crash-p", "Producer-Epoch": "0", "Producer-Seq": String(last) },
          body: `[p-${last}]`,
        });
        expect(retry.status).toBe(204);
        const after = await (await fetch(`${server.url}/v1/stream/crash?offset=-1`)).text();
        expect(after.split(`[p-${last}]`).length - 1).toBe(1);
        console.log(`${target.name}: ${acked.length} plain + ${producerAcked.length} producer appends acknowledged before SIGKILL, none lost`);
      } finally {
        await server.stop();
      }
    }, 120_000);
  });
}
