// One webhook POST (PROTOCOL 7.1): the target resolved and checked once (ssrf.ts), the body
// signed, the send pinned to the checked address over a kept-alive connection (send.ts), the
// answer read up to 64 KiB.
import type { DueDelivery } from "../store/subscriptions/index.ts";
import type { KeyRing } from "./keys.ts";
import type { Connections } from "./send.ts";
import { resolveTarget, type Resolver, type TargetPolicy } from "./ssrf.ts";
import { controlUrl } from "./view.ts";

const MAX_RESPONSE_BYTES = 64 * 1024;

export interface WebhookContext {
  keys: KeyRing;
  policy: TargetPolicy;
  resolver?: Resolver;
  publicBaseUrl?: string;
  connections: Connections;
}

/** Sends the wake; resolves with how the receiver answered, throws when it failed. */
export async function sendWebhook(d: DueDelivery, streams: unknown[], c: WebhookContext, signal: AbortSignal): Promise<"done" | "delivered"> {
  // Resolved and checked once; the send connects to that very address (issue 25.6).
  const target = await untilAborted(resolveTarget(d.webhookUrl!, c.policy, c.resolver), signal);
  const base = c.publicBaseUrl ?? d.baseUrl;
  const body = JSON.stringify({
    subscription_id: d.id,
    wake_id: d.wakeId,
    generation: d.generation,
    streams,
    callback_url: controlUrl(base, `subscriptions/${encodeURIComponent(d.id)}/callback`),
    callback_token: c.keys.issueToken({ subscription: d.id, incarnation: d.incarnation, generation: d.generation, wakeId: d.wakeId }),
  });
  const headers = { "Content-Type": "application/json", "Webhook-Signature": c.keys.signWebhook(body) };
  const res = await c.connections.post(target, headers, body, signal, MAX_RESPONSE_BYTES);
  if (res.status < 200 || res.status > 299) throw new Error(`webhook answered ${res.status}`);
  try {
    return (JSON.parse(res.text) as { done?: unknown })?.done === true ? "done" : "delivered";
  } catch {
    return "delivered";
  }
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
