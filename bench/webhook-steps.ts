// TEMPORARY (issue 30.3): append -> webhook per-step breakdown. One subscription, one
// stream, sequential appends (the next one after the previous wake arrived), ours (with
// DS_HOOK_TRACE marks) and the reference interleaved in rounds. All times on the shared
// monotonic clock (process.hrtime).
//   bun bench/webhook-steps.ts [rounds] [perRound]
//   bun bench/webhook-steps.ts receiver
import { readFileSync, rmSync } from "node:fs";
import { Http1Connection } from "../test/support/http1.ts";
import { JsonLineChild } from "./lib/child.ts";
import { ensureDatabase } from "./lib/pg.ts";
import { sleep } from "./lib/proc.ts";
import { startOurs, startReference, type Target } from "./lib/targets.ts";

const now = () => performance.timeOrigin + performance.now();
const [role, ...args] = process.argv.slice(2);

if (role === "receiver") {
  const DONE = JSON.stringify({ done: true });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const at = now();
      const raw = await req.text();
      console.log(JSON.stringify({ at, len: raw.length }));
      return new Response(DONE, { headers: { "Content-Type": "application/json" } });
    },
  });
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}/hook` }));
  for await (const _ of console) {
  }
  process.exit(0);
} else {
  const rounds = Number(role ?? 4);
  const perRound = Number(args[0] ?? 100);
  const TRACE = "/tmp/hook/trace.jsonl";
  rmSync(TRACE, { force: true });
  await ensureDatabase();
  const ours = await startOurs(1, { schema: "bench_hook", env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: "true", DS_HOOK_TRACE: TRACE, SUBSCRIPTION_WAKE_INTERVAL_MS: "0" } });
  const ref = await startReference("memory");
  const rx = new JsonLineChild("bench/webhook-steps.ts", ["receiver"]);
  const { url: hook } = await rx.next<{ url: string }>(15_000);
  const setUp = async (t: Target) => {
    await fetch(`${t.url}/v1/stream/h/0`, { method: "PUT", headers: { "Content-Type": "application/octet-stream" } });
    const res = await fetch(`${t.url}/v1/stream/__ds/subscriptions/hook-1`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "webhook", pattern: "h/*", webhook: { url: hook } }),
    });
    if (res.status !== 201) throw new Error(`subscription: ${res.status} ${await res.text()}`);
  };
  await setUp(ours);
  await setUp(ref);
  await sleep(500);
  const samples: Record<string, { send: number; resp: number; recv: number }[]> = { ours: [], ref: [] };
  const run = async (name: string, t: Target, n: number, keep: boolean) => {
    const conn = Http1Connection.fromUrl(t.url);
    for (let i = 0; i < n; i++) {
      const send = now();
      let resp = 0;
      const status = await new Promise<number>((resolve) =>
        conn.request("POST", "/v1/stream/h/0", { onEnd: (h) => ((resp = now()), resolve(h.status)) }, { "Content-Type": "application/octet-stream" }, Buffer.alloc(100, 46)),
      );
      if (status >= 300) throw new Error(`append ${status}`);
      const { at } = await rx.next<{ at: number }>(10_000);
      if (keep) samples[name].push({ send, resp, recv: at });
      await sleep(15);
    }
    conn.close();
  };
  await run("ours", ours, 20, false);
  await run("ref", ref, 20, false);
  rmSync(TRACE, { force: true });
  for (let r = 0; r < rounds; r++) {
    await run("ours", ours, perRound, true);
    await run("ref", ref, perRound, true);
  }
  await sleep(300);
  const traces = readFileSync(TRACE, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
  await Promise.all([ours.stop(), ref.stop(), rx.stop()]);
  const p50 = (xs: number[]) => {
    const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
    return s.length ? Math.round(s[Math.floor(s.length / 2)] * 1000) / 1000 : NaN;
  };
  const steps: Record<string, number[]> = {};
  const add = (k: string, v: number) => (steps[k] ??= []).push(v);
  samples.ours.forEach((s, i) => {
    const t = traces[i];
    if (!t) return;
    add("total (append sent -> received)", s.recv - s.send);
    add("append sent -> commit seen by trigger", t.commit - s.send);
    add("append response at client", s.resp - s.send);
    add("trigger -> flush (setImmediate)", t.flush - t.commit);
    add("flush -> claim statement sent", t.claimStart - t.flush);
    add("wakeAndClaim round trip", t.claimed - t.claimStart);
    add("claimed -> attempt", t.attempt - t.claimed);
    add("attempt -> target resolved", t.target - t.attempt);
    add("callback token (issueToken)", t.token - t.target);
    add("body signature (signWebhook)", t.signed - t.token);
    add("signed -> socket assigned", t.socket - t.signed);
    add("socket -> connected", t.connected - t.socket);
    add("connected -> request written", t.written - t.connected);
    add("written -> receiver got it", s.recv - t.written);
    add("signed -> receiver got it", s.recv - t.signed);
    add("(after) receiver -> response at sender", t.response - s.recv);
    add("(after) response -> deliveryFinished done", t.finished - t.response);
  });
  for (const s of samples.ref) add("reference total", s.recv - s.send);
  for (const s of samples.ref) add("reference append response", s.resp - s.send);
  const out = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, p50(v)]));
  const { loadavg } = await import("node:os");
  console.log(JSON.stringify({ samples: { ours: samples.ours.length, traces: traces.length, ref: samples.ref.length }, loadavg: loadavg(), p50: out }, null, 2));
  process.exit(0);
}
