// Subscription load, run as its own processes (the subs scenario):
//   bun bench/clients/webhooks.ts receiver <record|count> <jwksUrl>
//   bun bench/clients/webhooks.ts writer <baseUrl> <streams> <groups> <perSecond> <warmupS> <seconds>
//
// The receiver is a webhook endpoint on 127.0.0.1 (Bun.serve, nothing else) that answers
// every wake {"done":true} at once, so the server acks the wake's snapshot without a
// callback. It prints {"url": ...} when listening. On stdin, "reset" forgets what it saw
// and "report" prints it: counts, and in record mode, per wake, its arrival time and the
// (path, acked, tail) of every stream that had pending data, for the driver to match with
// the writer's appends. The first few signatures after a reset are checked against the
// server's JWKS (PROTOCOL 7.1: Ed25519 over "<t>.<raw body>"), off the response path.
//
// The writer appends 100 bytes to streams g<i % groups>/<i> (lib/http.ts groupedStreams)
// in order, i = 0, 1, 2, ... over and over, on a fixed schedule, one request at a time,
// and prints every append's stream, resulting Stream-Next-Offset and send time (wall
// clock, µs); warm-up appends are marked as such.
import { Http1Connection } from "../../test/support/http1.ts";
import { groupedStreams } from "../lib/http.ts";

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
const [role, ...args] = process.argv.slice(2);

interface Wake {
  subscription_id: string;
  wake_id: string;
  generation: number;
  streams: { path: string; acked_offset: string; tail_offset: string; has_pending: boolean }[];
  callback_url: string;
  callback_token: string;
}

/** Signatures checked after each reset: enough to show they are real, cheap at any rate. */
const SIGNATURES_CHECKED = 20;

async function receiver(mode: "record" | "count", jwksUrl: string) {
  const DONE = JSON.stringify({ done: true });
  let wakes = 0;
  let pendingStreams = 0;
  let badBodies = 0;
  let callbackUrl: string | undefined;
  let records: [number, string, [string, string, string][]][] = [];
  const toVerify: [string, string | null][] = [];
  const subscriptions = new Set<string>();

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const at = nowUs();
      const raw = await req.text();
      let wake: Wake | undefined;
      try {
        wake = JSON.parse(raw) as Wake;
      } catch {
        badBodies++;
      }
      if (wake && Array.isArray(wake.streams)) {
        wakes++;
        subscriptions.add(wake.subscription_id);
        callbackUrl ??= wake.callback_url;
        const pending = wake.streams.filter((s) => s.has_pending);
        pendingStreams += pending.length;
        if (mode === "record") records.push([Math.round(at), wake.subscription_id, pending.map((s) => [s.path, s.acked_offset, s.tail_offset])]);
        if (toVerify.length < SIGNATURES_CHECKED) toVerify.push([raw, req.headers.get("webhook-signature")]);
      } else {
        badBodies++;
      }
      return new Response(DONE, { headers: { "Content-Type": "application/json" } });
    },
  });
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}/hook` }));

  for await (const line of console) {
    const command = line.trim();
    if (command === "reset") {
      wakes = pendingStreams = badBodies = 0;
      records = [];
      toVerify.length = 0;
      subscriptions.clear();
      console.log(JSON.stringify({ reset: true }));
    } else if (command === "report") {
      const signatures = await verifyAll(jwksUrl, toVerify);
      console.log(JSON.stringify({ wakes, pendingStreams, badBodies, subscriptions: subscriptions.size, callbackUrl, signatures, records }));
    }
  }
  // stdin closed: the driver is gone, and the listening server would keep us alive.
  process.exit(0);
}

async function verifyAll(jwksUrl: string, items: [string, string | null][]) {
  const result = { checked: items.length, valid: 0, error: undefined as string | undefined };
  if (items.length === 0) return result;
  try {
    const jwks = (await (await fetch(jwksUrl)).json()) as { keys: { kid: string; x: string; crv: string; kty: string }[] };
    const keys = new Map<string, CryptoKey>();
    for (const k of jwks.keys) {
      keys.set(k.kid, await crypto.subtle.importKey("jwk", { kty: k.kty, crv: k.crv, x: k.x }, { name: "Ed25519" }, false, ["verify"]));
    }
    for (const [raw, header] of items) {
      const m = header?.match(/^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$/);
      const key = m && keys.get(m[2]);
      if (!m || !key) continue;
      const ok = await crypto.subtle.verify("Ed25519", key, Buffer.from(m[3], "base64url"), new TextEncoder().encode(`${m[1]}.${raw}`));
      if (ok && Math.abs(Date.now() / 1000 - Number(m[1])) < 300) result.valid++;
    }
  } catch (err) {
    result.error = String((err as Error).message ?? err);
  }
  return result;
}

async function writer(base: string, streams: number, groups: number, perSecond: number, warmupS: number, seconds: number) {
  const names = groupedStreams(streams, groups);
  const conn = Http1Connection.fromUrl(base);
  // [stream, next offset, send time µs, warm-up ? 1 : 0]
  const appends: [string, string, number, number][] = [];
  let failed = 0;
  const start = Date.now();
  const warmEnd = start + warmupS * 1000;
  const end = warmEnd + seconds * 1000;
  const interval = 1000 / perSecond;
  let next = performance.now();
  for (let n = 0; Date.now() < end; n++) {
    const stream = names[n % names.length];
    const warm = Date.now() < warmEnd;
    const sentAt = nowUs();
    const body = Buffer.from(`T${Math.round(sentAt)};`.padEnd(100, "."));
    const head = await new Promise<{ status: number; headers: Map<string, string> }>((resolve) => {
      conn.request("POST", `/v1/stream/${stream}`, { onEnd: resolve }, { "Content-Type": "application/octet-stream" }, body);
    });
    const offset = head.headers.get("stream-next-offset");
    if (head.status >= 300 || !offset) failed++;
    else appends.push([stream, offset, Math.round(sentAt), warm ? 1 : 0]);
    // Fixed schedule, not fixed gaps: a slow append does not shift the ones after it.
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  conn.close();
  console.log(JSON.stringify({ failed, appends }));
}

// Last, so every constant above is initialised before a role runs.
if (role === "receiver") await receiver(args[0] as "record" | "count", args[1]);
else if (role === "writer") await writer(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]), Number(args[5]));
else throw new Error(`unknown role ${role}`);
