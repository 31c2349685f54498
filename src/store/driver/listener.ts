// The LISTEN connection, healing itself. postgres.js' own listen() re-listens after a
// drop only once: if that attempt fails (Postgres still restarting) the channel is
// forgotten for good. So the listener keeps its own dedicated client and
//  - re-listens after every close, retrying with a short capped backoff until it works;
//  - checks the connection with a heartbeat query, and replaces the client when one does
//    not come back in time (a half-open socket never reports a close);
//  - calls onListen after every successful LISTEN, when notifications may have been lost.
import { backoffMs } from "../../lib/backoff.ts";
import postgres from "postgres";
import { quoteIdent } from "./quote.ts";

export interface Listener {
  /** True while LISTEN is in place and the last heartbeat came back in time. */
  readonly healthy: boolean;
  /** Times the connection was replaced or re-listened after a loss. */
  readonly reconnects: number;
  close(): Promise<void>;
}

export interface ListenerOptions {
  url: string;
  /** Unix socket file, when connecting through one (db.ts driverTarget). */
  path?: string;
  /** "primary" for a multi-host URL (db.ts driverTarget): LISTEN only works on a primary. */
  targetSessionAttrs?: "primary";
  connection: Record<string, string>;
  channel: string;
  onNotify: (payload: string) => void;
  onListen: () => void;
  heartbeatMs: number;
  connectTimeoutS: number;
  retryMaxMs: number;
  log?: (msg: string) => void;
}

export async function listenPostgres(o: ListenerOptions): Promise<Listener> {
  let client: postgres.Sql | undefined;
  let listening = false;
  let closed = false;
  let reconnects = 0;
  let connecting: Promise<void> | undefined;
  let lastBeat = Date.now();

  const open = () => {
    const c = postgres(o.url, {
      path: o.path,
      target_session_attrs: o.targetSessionAttrs,
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      connect_timeout: o.connectTimeoutS,
      onnotice: () => {},
      connection: o.connection,
      onnotify: (channel: string, payload: string) => {
        if (channel === o.channel) o.onNotify(payload);
      },
      onclose: () => {
        // Only the current client's loss matters; a replaced one closing is expected.
        if (c === client && listening && !closed) {
          listening = false;
          relisten("connection closed");
        }
      },
    } as postgres.Options<Record<string, never>>);
    return c;
  };

  const listenOnce = async () => {
    client ??= open();
    await client.unsafe(`LISTEN ${quoteIdent(o.channel)}`);
    listening = true;
    lastBeat = Date.now();
    o.onListen();
  };

  const relisten = (why: string) => {
    connecting ??= (async () => {
      o.log?.(`listener lost (${why}); re-listening`);
      reconnects++;
      for (let attempt = 0; !closed; attempt++) {
        try {
          await listenOnce();
          o.log?.("listener re-connected");
          return;
        } catch {
          // A fresh client each time: a half-open one may never answer.
          const old = client;
          client = undefined;
          void old?.end({ timeout: 0 }).catch(() => {});
          await sleep(backoffMs({ firstMs: 50, maxMs: o.retryMaxMs, jitter: [0.5, 1] }, attempt));
        }
      }
    })().finally(() => (connecting = undefined));
  };

  const heartbeat = setInterval(async () => {
    if (closed || connecting || !listening || !client) return;
    const c = client;
    const ok = await withTimeout(c.unsafe("SELECT 1").then(() => true, () => false), o.heartbeatMs * 2);
    if (c !== client || closed) return;
    if (ok) {
      lastBeat = Date.now();
      return;
    }
    listening = false;
    client = undefined;
    void c.end({ timeout: 0 }).catch(() => {});
    relisten("heartbeat timed out");
  }, o.heartbeatMs);
  (heartbeat as { unref?: () => void }).unref?.();

  await listenOnce();
  return {
    get healthy() {
      return listening && Date.now() - lastBeat < o.heartbeatMs * 3;
    },
    get reconnects() {
      return reconnects;
    },
    async close() {
      closed = true;
      clearInterval(heartbeat);
      listening = false;
      await client?.end({ timeout: 1 }).catch(() => {});
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
