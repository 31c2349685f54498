// Warm-up before an instance reports ready (issue 30; README, Operations). A fresh instance
// spent 100-200 ms more server CPU on its first 2,000 producer messages than on the next
// 2,000 (the runtime's request and response paths, and ours, not yet compiled by the JIT), and
// its pool opened connections and prepared statements while requests waited: at 10,000
// messages/s the first messages queued behind that, 100-240 ms at p50 against ~10 ms warm.
// So before /healthz says ready, the instance opens and prepares every pool connection
// (Store.warmUp) and sends itself a short burst of traffic: producer and plain appends,
// catch-up, long-poll and SSE reads, on two streams of its own that it deletes afterwards.
//
// The traffic goes over real sockets (the same traffic handed to the app in-process left
// most of that CPU in place: it is in the socket paths), to a second listener on a loopback
// port of its own that serves the app without the guard, metrics or access log and is closed
// afterwards, so the public port never takes unauthenticated requests. Its streams wake no
// subscription (an inert trigger): outside this instance the warm-up is seen only as two
// short-lived streams under __warm-up/<random id> and their notifications.
import { randomUUID } from "node:crypto";
import type { Subscriptions } from "../subscriptions/service.ts";
import type { Config } from "../settings.ts";
import { serve } from "../runtime/serve.ts";
import type { App } from "./app.ts";
import { STREAM_PREFIX } from "./context.ts";

/** Where the warm-up streams live: a random id, so no client's stream is touched. */
export const WARM_UP_SEGMENT = "__warm-up";

export interface WarmUpReport {
  /** Pool connections opened and prepared. */
  connections: number;
  /** Requests the app answered during warm-up. */
  requests: number;
  ms: number;
}

/** The subscriptions as the warm-up's app sees them: its streams link and wake nothing. */
export function inertSubscriptions(subscriptions: Subscriptions): Subscriptions {
  const trigger = { appended() {}, created: async () => {} };
  return new Proxy(subscriptions, { get: (target, key) => (key === "trigger" ? trigger : Reflect.get(target, key)) });
}

/**
 * Runs `appends` producer appends (in rounds of PRODUCERS at once, so they share groups as
 * live traffic does) and half as many plain ones, with an SSE and a long-poll reader following
 * the JSON stream, then deletes both streams.
 */
export async function warmUpTraffic(app: App, config: Pick<Config, "MAX_BODY_BYTES" | "REQUEST_IDLE_TIMEOUT_S">, appends: number): Promise<number> {
  const listener = await serve((request) => app.fetch(request), { ...config, PORT: 0, HOST: "127.0.0.1" });
  try {
    return await traffic(`http://127.0.0.1:${listener.port}${STREAM_PREFIX}${WARM_UP_SEGMENT}/${randomUUID()}`, appends);
  } finally {
    await listener.stop(0);
  }
}

async function traffic(base: string, appends: number): Promise<number> {
  const json = `${base}/json`;
  const bytes = `${base}/bytes`;
  let requests = 0;
  const call = async (url: string, init?: RequestInit) => {
    requests++;
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return res;
  };
  await call(json, { method: "PUT", headers: { "content-type": "application/json" } });
  await call(bytes, { method: "PUT", headers: { "content-type": "application/octet-stream" } });
  let done = false;
  const sse = followSse(json);
  requests++;
  const longPoll = (async () => {
    let offset = "-1";
    while (!done) {
      const res = await call(`${json}?offset=${offset}${offset === "-1" ? "" : "&live=long-poll"}`);
      if (res.status >= 400) return;
      offset = res.headers.get("stream-next-offset") ?? offset;
    }
  })();
  const message = JSON.stringify({ warmUp: true, text: "x".repeat(48) });
  const rounds = Math.ceil(appends / PRODUCERS);
  for (let seq = 0; seq < rounds; seq++) {
    const batch = `[${Array.from({ length: 1 + (seq % 20) }, () => message).join(",")}]`;
    const sends: Promise<unknown>[] = [];
    for (let p = 0; p < PRODUCERS; p++) {
      const headers = { "content-type": "application/json", "producer-id": `w${p}`, "producer-epoch": "0", "producer-seq": String(seq) };
      sends.push(call(json, { method: "POST", headers, body: batch }));
    }
    if (seq % 2 === 0) sends.push(call(bytes, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: new Uint8Array(100) }));
    if (seq % 10 === 0) sends.push(call(`${bytes}?offset=-1`));
    await Promise.all(sends);
  }
  done = true;
  await sse.stop();
  // The delete wakes the long-poll, which then finds the stream gone and ends.
  await call(json, { method: "DELETE" });
  await call(bytes, { method: "DELETE" });
  await longPoll;
  return requests;
}

const PRODUCERS = 8;

/** An SSE reader on `url` that reads until stopped. */
function followSse(url: string): { stop(): Promise<void> } {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let stopped = false;
  const reading = (async () => {
    const res = await fetch(`${url}?offset=-1&live=sse`);
    if (!res.body) return;
    reader = res.body.getReader();
    if (stopped) return void (await reader.cancel());
    while (!(await reader.read()).done);
  })().catch(() => {});
  return {
    async stop() {
      stopped = true;
      await reader?.cancel().catch(() => {});
      await reading;
    },
  };
}
