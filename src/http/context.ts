import type { Config } from "../settings.ts";
import { CONTROL_PREFIX, STREAM_PREFIX } from "../protocol/paths.ts";
import { BadRequest, NotImplemented } from "../protocol/errors.ts";
import type { Notifier } from "../live/notifier.ts";
import type { SharedReads } from "../live/shared-reads.ts";
import type { SseHubs } from "../live/sse-hub.ts";
import type { Store } from "../store/index.ts";
import type { Subscriptions } from "../subscriptions/service.ts";
import type { Target } from "./target.ts";
import type { RetentionRules } from "../retention/rules.ts";

/** What every handler needs: the store, the live notifier, and the limits. */
export interface AppContext {
  store: Store;
  notifier: Notifier;
  /** Single-flight look-ups and range reads shared by concurrent readers. */
  reads: SharedReads;
  /** Per-stream fan-out of caught-up SSE readers. */
  sse: SseHubs;
  config: Pick<
    Config,
    "LONG_POLL_TIMEOUT_MS" | "SSE_MAX_LIFETIME_MS" | "MAX_BODY_BYTES" | "READ_CHUNK_BYTES" | "MAX_PATH_BYTES" | "MAX_MESSAGES_PER_APPEND"
  >;
  /** Subscriptions (PROTOCOL 6, 7): every instance runs them. */
  subscriptions: Subscriptions;
  /** Operator retention rules (retention/rules.ts), for the admin API's policy view. */
  retentionRules?: RetentionRules;
  /** Aborted when the server shuts down: live reads end so clients reconnect elsewhere. */
  shutdown: AbortSignal;
  /** What /healthz reports (set by buildApp). */
  health?: () => { ok: boolean; detail: Record<string, unknown> };
}

export { STREAM_PREFIX };

// PROTOCOL 6: the first segment __ds is reserved for control APIs, never a stream.
const RESERVED = CONTROL_PREFIX;

/** The stream's key is its URL path exactly as sent (not decoded). */
export function streamPath(t: Target, maxPathBytes: number): string {
  const path = t.path;
  if (path.length <= STREAM_PREFIX.length) throw new BadRequest("stream name is empty");
  if (path.length > maxPathBytes) throw new BadRequest(`stream path is longer than ${maxPathBytes} bytes`);
  if (path === RESERVED || path.startsWith(`${RESERVED}/`)) {
    throw new NotImplemented("the reserved __ds control APIs (subscriptions) are not supported by this server");
  }
  return path;
}
