// How a subscription looks on the wire (PROTOCOL 6.3) and the control URLs it names.
import { formatOffset } from "../protocol/offsets.ts";
import { CONTROL_PREFIX } from "../protocol/paths.ts";
import { relativeOf } from "../protocol/subscription-requests.ts";
import type { SubscriptionRecord } from "../store/subscriptions/index.ts";

/** An absolute URL under the control prefix, from a base such as "https://host[/prefix]". */
export function controlUrl(base: string, rest: string): string {
  return `${base.replace(/\/+$/, "")}${CONTROL_PREFIX}/${rest}`;
}

export function subscriptionView(s: SubscriptionRecord, signing: { kid: string; base: string }): Record<string, unknown> {
  return {
    id: s.id,
    subscription_id: s.id,
    type: s.type,
    pattern: s.pattern,
    streams: s.links.map((l) => ({
      path: relativeOf(l.key),
      link_type: l.explicit ? "explicit" : "glob",
      acked_offset: formatOffset(l.ackedPos),
    })),
    webhook:
      s.webhookUrl === null
        ? null
        : { url: s.webhookUrl, signing: { alg: "ed25519", kid: signing.kid, jwks_url: controlUrl(signing.base, "jwks.json") } },
    wake_stream: s.wakeStream,
    lease_ttl_ms: s.leaseTtlMs,
    created_at: s.createdAt.toISOString(),
    status: s.status,
    description: s.description,
  };
}
