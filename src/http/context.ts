import type { Config } from "../config.ts";
import type { Notifier } from "../live/notifier.ts";
import type { SharedReads } from "../live/shared-reads.ts";
import type { Store } from "../store/index.ts";

/** What every handler needs: the store, the live notifier, and the limits. */
export interface AppContext {
  store: Store;
  notifier: Notifier;
  /** Single-flight look-ups and range reads shared by concurrent readers. */
  reads: SharedReads;
  config: Pick<
    Config,
    "LONG_POLL_TIMEOUT_MS" | "SSE_MAX_LIFETIME_MS" | "MAX_BODY_BYTES" | "READ_CHUNK_BYTES" | "BACKSTOP_MS"
  >;
  /** Aborted when the server shuts down: live reads end so clients reconnect elsewhere. */
  shutdown: AbortSignal;
}

export const STREAM_PREFIX = "/v1/stream/";

/** The stream's key is its URL path exactly as sent (not decoded). */
export function streamPath(url: URL): string {
  return url.pathname;
}
