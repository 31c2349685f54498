// Database availability: one typed error for "the database cannot be reached right now",
// and a gate that answers it at once while Postgres is known to be down, instead of letting
// every request queue behind the driver's reconnect attempts. A probe re-opens the gate as
// soon as one query succeeds again.

/** The database is unreachable, restarting or shutting down: answered 503 + Retry-After. */
export class DatabaseUnavailable extends Error {
  constructor(message = "database unavailable", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DatabaseUnavailable";
  }
}

// postgres.js connection errors, socket errors, and SQLSTATE classes 08 (connection
// exception), 57P (operator intervention: shutdown, crash recovery) and 53300 (too many
// connections, seen while a restarted server fills up again), and 25006 (read-only
// transaction: the connection reached a standby, as a pool connection through PgBouncer may
// while a failover is under way: nothing was written, the client may retry).
const UNAVAILABLE_CODES = new Set([
  "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT",
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "53300", "25006",
]);

/** True for errors that say the database could not be reached, not that the query was wrong. */
export function isConnectionError(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (e instanceof DatabaseUnavailable) return true;
    const code = typeof e.code === "string" ? e.code : "";
    if (UNAVAILABLE_CODES.has(code) || code.startsWith("08") || code.startsWith("57P")) return true;
    e = e.cause as typeof e;
  }
  return false;
}

export interface GateOptions {
  /** Runs one cheap query; resolves when the database answers. */
  probe: () => Promise<unknown>;
  /** Pause between failed probes. */
  probeIntervalMs: number;
  /** A probe that takes longer than this counts as failed. */
  probeTimeoutMs: number;
  /** Called when the database becomes unreachable (with the cause) and when it answers again (with how long it was down). */
  onChange?: (up: boolean, detail: { cause?: unknown; downForMs?: number }) => void;
}

export class AvailabilityGate {
  private down = false;
  private probing = false;
  private closed = false;
  private lastCause: unknown;
  private downSince = 0;

  constructor(private readonly opts: GateOptions) {}

  get up(): boolean {
    return !this.down;
  }

  /**
   * Runs a database call through the gate: refused at once while the database is down,
   * and a connection error closes the gate (and starts probing) before it is rethrown as
   * DatabaseUnavailable.
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.down) throw new DatabaseUnavailable("database unavailable (reconnecting)", { cause: this.lastCause });
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      this.markDown(err);
      throw err instanceof DatabaseUnavailable ? err : new DatabaseUnavailable(`database unavailable: ${describe(err)}`, { cause: err });
    }
  }

  markDown(cause: unknown): void {
    this.lastCause = cause;
    if (!this.down) {
      this.down = true;
      this.downSince = Date.now();
      this.opts.onChange?.(false, { cause });
    }
    if (!this.probing) void this.probeLoop();
  }

  close(): void {
    this.closed = true;
  }

  private async probeLoop(): Promise<void> {
    this.probing = true;
    try {
      while (this.down && !this.closed) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ok = await Promise.race([
          this.opts.probe().then(() => true, (err) => ((this.lastCause = err), false)),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.opts.probeTimeoutMs))),
        ]);
        clearTimeout(timer);
        if (ok) {
          this.down = false;
          this.opts.onChange?.(true, { downForMs: Date.now() - this.downSince });
          return;
        }
        await new Promise((r) => setTimeout(r, this.opts.probeIntervalMs));
      }
    } finally {
      this.probing = false;
    }
  }
}

export function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === "string" ? `${e.code} ` : "";
  return `${code}${typeof e?.message === "string" ? e.message : String(err)}`.trim();
}
