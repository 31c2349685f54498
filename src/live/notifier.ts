// Wakes live readers. ONE listener connection per instance receives the stream ids that
// append transactions notify after commit; an in-process map finds the waiters of each
// stream. A notification is only a hint: woken readers re-read the table.
import type { Db } from "../store/db.ts";

export interface Waiter {
  /** Resolves true when woken, false when `ms` passed (or `signal` aborted) first. */
  wait(ms: number, signal?: AbortSignal): Promise<boolean>;
  cancel(): void;
  /**
   * A read that starts after this tick sees everything that woke (or could have woken)
   * this waiter: the registration tick, then the tick of the latest wake.
   */
  readonly since: number;
}

const PING = "ping";

export class Notifier {
  private readonly waiters = new Map<number, Set<() => void>>();
  private unlisten?: () => Promise<void>;
  private pingTimer?: ReturnType<typeof setInterval>;
  private lastHeard = 0;
  private listening = false;
  private clock = 0;

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly pingMs = 10_000,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(
      this.channel,
      (payload) => this.onNotify(payload),
      () => {
        // (Re)connected: anything notified while we were away is lost, so every waiter re-checks.
        this.listening = true;
        this.lastHeard = Date.now();
        this.wakeAll();
      },
    );
    // A quiet listener may be dead without knowing it: ping ourselves through Postgres.
    this.pingTimer = setInterval(() => {
      this.db.rows(sqlPing(this.channel)).catch(() => {});
    }, this.pingMs);
    (this.pingTimer as { unref?: () => void }).unref?.();
  }

  /** Healthy when the listener is up and has heard from Postgres recently. */
  get healthy(): boolean {
    return this.listening && Date.now() - this.lastHeard < this.pingMs * 3;
  }

  get waiterCount(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  async stop(): Promise<void> {
    clearInterval(this.pingTimer);
    this.listening = false;
    await this.unlisten?.().catch(() => {});
    this.wakeAll();
  }

  /** Logical time: bumped by registrations, wake-ups and shared reads (live/shared-reads.ts). */
  tick(): number {
    return ++this.clock;
  }

  /** Registers interest in a stream before the caller's final tail check (no lost wake-ups). */
  subscribe(streamId: number): Waiter {
    let woken = false;
    let since = this.tick();
    let release: (() => void) | undefined;
    const wake = () => {
      woken = true;
      since = this.tick();
      release?.();
    };
    let set = this.waiters.get(streamId);
    if (!set) this.waiters.set(streamId, (set = new Set()));
    set.add(wake);
    const cancel = () => {
      const s = this.waiters.get(streamId);
      if (s?.delete(wake) && s.size === 0) this.waiters.delete(streamId);
      release?.();
    };
    return {
      cancel,
      get since() {
        return since;
      },
      wait: (ms, signal) =>
        new Promise<boolean>((resolve) => {
          if (woken || signal?.aborted) return resolve(woken);
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            release = undefined;
            resolve(woken);
          };
          const timer = setTimeout(done, Math.max(0, ms));
          signal?.addEventListener("abort", done);
          release = done;
        }).then((r) => {
          woken = false;
          return r;
        }),
    };
  }

  /** Wakes the waiters of the given streams on this instance only. */
  wake(streamId: number): void {
    const set = this.waiters.get(streamId);
    if (!set) return;
    this.waiters.delete(streamId);
    for (const w of set) w();
  }

  wakeAll(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }

  private onNotify(payload: string): void {
    this.lastHeard = Date.now();
    if (payload === PING) return;
    for (const id of payload.split(",")) this.wake(Number(id));
  }
}

import { sql } from "../store/db.ts";
function sqlPing(channel: string) {
  return sql`SELECT pg_notify(${channel}, ${PING})`;
}
