// Group commit: appends that arrive while a transaction is in flight wait and then share
// the next one, so the commit rate of Postgres no longer caps the append rate.
import type { Db } from "./db.ts";
import { type AppendOutcome, type AppendRequest, appendGroup } from "./append.ts";

interface Pending {
  req: AppendRequest;
  resolve: (v: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export class Appender {
  private queue: Pending[] = [];
  private running = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly maxBatch: number,
    private readonly concurrency: number,
  ) {}

  append(req: AppendRequest): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once every queued append has been committed or rejected. */
  drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.running++;
      this.run(batch).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) this.idle.splice(0).forEach((r) => r());
      });
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      const settled = await appendGroup(this.db, this.channel, batch.map((p) => p.req));
      settled.forEach((s, i) => (s.ok ? batch[i].resolve(s.value) : batch[i].reject(s.error)));
    } catch (err) {
      if (batch.length === 1) {
        batch[0].reject(err);
        return;
      }
      // A database error fails the whole group; retry each append alone so one bad
      // append (or a transient conflict) does not fail its neighbours.
      for (const p of batch) await this.run([p]);
    }
  }
}
