// The server's own settings (database, limits, live reads, subscriptions, observability).
// Parts with settings of their own (auth/config.ts) are composed with these at the top, in
// settings.ts, which loads and validates the whole configuration.
import { Type } from "@sinclair/typebox";
import { APPEND_DEFAULTS, MAX_FORK_DEPTH_DEFAULT } from "./store/index.ts";
import { MAX_MESSAGES_DEFAULT } from "./protocol/json.ts";

const Int = (min: number, dflt: number, description: string) =>
  Type.Integer({ minimum: min, default: dflt, description });

export const CoreConfigSchema = Type.Object({
  PORT: Int(0, 4437, "TCP port to listen on"),
  HOST: Type.String({ default: "127.0.0.1", description: "interface to bind" }),
  WORKERS: Int(1, 1, "server processes sharing PORT (SO_REUSEPORT); more than 1 needs DATABASE_URL"),
  DATABASE_URL: Type.Optional(Type.String({ description: "Postgres URL; unset means embedded PGlite. May name several hosts (h1:5432,h2:5432) with target_session_attrs=read-write: writes go to whichever is the primary" })),
  LISTEN_DATABASE_URL: Type.Optional(Type.String({ description: "Postgres URL for the LISTEN connections, which need a session of their own: set it to reach Postgres directly when DATABASE_URL goes through a transaction-mode pooler such as PgBouncer (default: DATABASE_URL)" })),
  DATABASE_READ_URLS: Type.Optional(Type.String({ description: "hot standby URLs for catch-up reads, separated by commas: a read goes to a standby and is finished on the primary when the standby has not replayed as far as the primary's tail (stream rows, LISTEN and writes stay on the primary)" })),
  DATABASE_PREPARE: Type.Union([Type.Literal("true"), Type.Literal("false")], { default: "true", description: "keep hot statements prepared on each connection; false for a transaction-mode pooler that cannot (PgBouncer before 1.21)" }),
  DATA_DIR: Type.String({ default: "./data", description: "PGlite data folder when DATABASE_URL is unset" }),
  DATABASE_SCHEMA: Type.String({ default: "public", pattern: "^[A-Za-z_][A-Za-z0-9_]{0,40}$" }),
  DATABASE_POOL_SIZE: Int(2, 10, "postgres.js pool size"),
  DATABASE_CONNECT_TIMEOUT_MS: Int(100, 3_000, "give up on a Postgres connection attempt after this long"),
  DATABASE_RECONNECT_MAX_MS: Int(10, 500, "longest pause between reconnect attempts while Postgres is unreachable"),
  LISTENER_HEARTBEAT_MS: Int(100, 1_000, "how often the LISTEN connection proves it is alive (replaced after 2 misses)"),
  WARM_UP_APPENDS: Int(0, 2_000, "appends of the instance's own warm-up traffic before /healthz says ready, on Postgres (0: only open and prepare the pool)"),
  LONG_POLL_TIMEOUT_MS: Int(1, 30_000, "how long a long-poll waits for data"),
  SSE_MAX_LIFETIME_MS: Int(1, 60_000, "SSE connections are closed after this long so clients reconnect"),
  MAX_BODY_BYTES: Int(1, 64 * 1024 * 1024, "largest accepted request body (413 above)"),
  MAX_MESSAGES_PER_APPEND: Int(1, MAX_MESSAGES_DEFAULT, "most JSON messages one append (or create body) may carry (413 above)"),
  READ_CHUNK_BYTES: Int(1, 4 * 1024 * 1024, "most bytes returned by one catch-up read"),
  BACKSTOP_MS: Int(50, 5_000, "how often one query re-checks every stream with live readers, notification or not"),
  SWEEP_INTERVAL_MS: Int(0, 60_000, "how often expired streams are removed (0 disables)"),
  RETENTION_INTERVAL_MS: Int(0, 60_000, "how often the retention and compaction pass runs on each instance (0 disables; notes/retention.md)"),
  RETENTION_RULES_FILE: Type.Optional(Type.String({ description: "JSON file of operator retention rules by path glob; the stricter of a rule and the stream's own headers wins" })),
  COMPACTION_DELETE_RETENTION_MS: Int(0, 86_400_000, "how long compaction keeps a key's delete after removing the key's earlier changes, so readers behind still see it"),
  SHUTDOWN_GRACE_MS: Int(0, 10_000, "how long shutdown waits for in-flight requests"),
  APPEND_BATCH_MAX: Int(1, APPEND_DEFAULTS.batchMax, "most appends committed in one shared transaction"),
  APPEND_CONCURRENCY: Int(1, APPEND_DEFAULTS.concurrency, "append groups in flight at once per instance (PGlite always uses 1)"),
  APPEND_OVERLAP_MIN: Int(1, APPEND_DEFAULTS.overlapMin, "appends that, once waiting, start a group at once (else at the end of the event-loop turn)"),
  MAX_FORK_DEPTH: Int(1, MAX_FORK_DEPTH_DEFAULT, "deepest fork chain: a fork of a stream already this many forks deep is refused with 400"),
  PUBLIC_BASE_URL: Type.Optional(
    Type.String({
      pattern: "^https?://[^\\s]+$",
      description: "public origin (and path prefix) clients use, e.g. https://streams.example.com; names callback_url and jwks_url (default: the request's origin)",
    }),
  ),
  WEBHOOK_SIGNING_KEY: Type.Optional(Type.String({ description: "private Ed25519 JWK that signs webhooks and tokens (default: generated once and stored)" })),
  WEBHOOK_PUBLISHED_KEYS: Type.Optional(Type.String({ description: "JSON array of further public JWKs to publish (rotation)" })),
  WEBHOOK_TIMEOUT_MS: Int(100, 10_000, "how long one webhook POST may take before it counts as failed"),
  WEBHOOK_CONCURRENCY: Int(1, 32, "webhook deliveries in flight at once per instance"),
  WEBHOOK_HOST_CONCURRENCY: Int(1, 8, "webhook deliveries in flight at once per instance to one target host (host:port): a slow or dead receiver holds at most this many of WEBHOOK_CONCURRENCY"),
  WEBHOOK_ALLOW_PRIVATE_TARGETS: Type.Union([Type.Literal("true"), Type.Literal("false")], {
    default: "false",
    description: "true lets webhooks reach loopback, private, link-local and other non-public addresses, and use plain http to this machine (development and tests only)",
  }),
  CALLBACK_TOKEN_TTL_S: Int(60, 3_600, "lifetime of callback and claim tokens"),
  SUBSCRIPTION_WAKE_INTERVAL_MS: Int(0, 1_000, "a subscription is woken at most once per this interval: data appended meanwhile waits for the next wake, which covers all of it (0: as soon as the last wake ends)"),
  SUBSCRIPTION_TICK_MS: Int(50, 1_000, "how often lapsed leases are ended and due retries claimed"),
  SUBSCRIPTION_BACKSTOP_MS: Int(100, 15_000, "how often one instance re-checks every subscription for pending work a trigger missed"),
  // Observability (src/observability/)
  LOG_LEVEL: Type.Union(["trace", "debug", "info", "warn", "error", "fatal", "silent"].map((l) => Type.Literal(l)), { default: "info" }),
  LOG_FORMAT: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("pretty")], { description: "unset: json unless stdout is a terminal" })),
  ACCESS_LOG: Type.Union([Type.Literal("true"), Type.Literal("false")], { default: "false", description: "one log line per request" }),
  TRUST_REQUEST_ID: Type.Union([Type.Literal("true"), Type.Literal("false")], { default: "true", description: "reuse a well-formed X-Request-Id from the client" }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: "serve /metrics on this port only (unset: on PORT)" })),
});
