// Load for the fault test: idempotent-producer writers and live readers (long-poll and SSE)
// on every instance, with every response and every delivery time-stamped so that losses,
// duplicates, status discipline and recovery times can be judged afterwards.
// JSON streams; each append is one message {"w": writer, "s": seq}.

export interface Fault {
  kind: "fast restart" | "immediate crash" | "all backends terminated" | "failover";
  /** When the restart command was issued. */
  startedAt: number;
  /** First pg_isready success after Postgres was seen down (failover: the promotion done). */
  readyAt: number;
  commandMs: number;
}

interface Message {
  w: string;
  s: number;
}

interface Writer {
  id: string;
  stream: string;
  acked: number;
  ackTimes: number[];
}

interface Reader {
  name: string;
  stream: string;
  items: Message[];
  seenAt: number[];
}

export interface FaultRun {
  writers: Writer[];
  readers: (Reader & { matches: boolean })[];
  stored(stream: string): Message[];
  storedSeqs(w: Writer): number[];
  fiveHundreds: string[];
  unexpected: string[];
  hangs: string[];
  unavailableOutsideOutage: string[];
  max503Ms: number;
  count503: number;
  recovery: { kind: string; downMs: number; writeResumeMs: number; writeStallMs: number; readResumeMs: number; slowestReader: string }[];
  maxReaderLagMs: number;
}

const REQUEST_TIMEOUT_MS = 5_000;
const LIVE_TIMEOUT_MS = 20_000;
/** 503s are expected from a fault's start until this long after Postgres is back (by default). */
const OUTAGE_TAIL_MS = 2_000;
const RETRY_PAUSE_MS = 25;
const WRITE_PAUSE_MS = 10;
const GIVE_UP_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

interface Response503 {
  /** When the request was sent and when its answer came. */
  t0?: number;
  at: number;
  ms: number;
  what: string;
}

export class Load {
  private writers: Writer[] = [];
  private readers: Reader[] = [];
  private writing: Promise<void>[] = [];
  private reading: Promise<void>[] = [];
  private stopWriting = false;
  private readersCtl = new AbortController();
  private fiveHundreds: string[] = [];
  private unexpected: string[] = [];
  private hangs: string[] = [];
  private unavailable: Response503[] = [];
  private finalStore = new Map<string, Message[]>();
  /** The slowest acknowledged appends (any time). */
  private slowAcks: Response503[] = [];

  constructor(
    private readonly instances: { name: string; url: string }[],
    private readonly streams: string[],
    /** How long after Postgres is back a 503 still counts as part of the outage. */
    private readonly outageTailMs = OUTAGE_TAIL_MS,
  ) {}

  /** One line on progress, for a run that seems stuck. */
  progress(): string {
    return this.writers.map((w) => `${w.id}: ${w.acked} acked, last ${Math.round(now() - (w.ackTimes.at(-1) ?? this.t0))} ms ago`).join("; ");
  }

  async createStreams(): Promise<void> {
    for (const s of this.streams) {
      const res = await fetch(`${this.instances[0].url}/v1/stream/${s}`, { method: "PUT", headers: { "Content-Type": "application/json" } });
      if (res.status !== 201) throw new Error(`create ${s}: ${res.status}`);
    }
  }

  private t0 = 0;
  private stoppedAt = 0;
  private faultTimes: Fault[] = [];

  start(): void {
    this.t0 = now();
    for (const inst of this.instances) {
      for (const stream of this.streams) {
        const w: Writer = { id: `${inst.name}/${stream}`, stream, acked: 0, ackTimes: [] };
        this.writers.push(w);
        this.writing.push(this.write(inst.url, w));
        for (const mode of ["long-poll", "sse"] as const) {
          const r: Reader = { name: `${mode}@${inst.name}/${stream}`, stream, items: [], seenAt: [] };
          this.readers.push(r);
          this.reading.push(mode === "sse" ? this.followSse(inst.url, r) : this.followLongPoll(inst.url, r));
        }
      }
    }
  }

  private note(status: number, t0: number, what: string): void {
    const t1 = now();
    if (status === 503) this.unavailable.push({ t0, at: t1, ms: t1 - t0, what });
    else if (status >= 500) this.fiveHundreds.push(`${what}: ${status}`);
  }

  private failed(err: unknown, t0: number, what: string): void {
    const e = err as Error;
    if (e.name === "AbortError" && this.readersCtl.signal.aborted) return;
    const line = `${what}: ${e.name} ${e.message} after ${Math.round(now() - t0)} ms`;
    if (e.name === "TimeoutError") this.hangs.push(line);
    else this.unexpected.push(line);
  }

  private async write(base: string, w: Writer): Promise<void> {
    for (let seq = 0; !this.stopWriting; seq++) {
      const what = `append ${w.id}#${seq}`;
      for (let first = now(); ; ) {
        // Once the run is over, an append that still cannot be acknowledged is a failure.
        if (this.stopWriting && now() - Math.max(first, this.stoppedAt) > GIVE_UP_MS) {
          this.unexpected.push(`${what}: not acknowledged ${GIVE_UP_MS} ms after the run ended`);
          return;
        }
        const t0 = now();
        try {
          const res = await fetch(`${base}/v1/stream/${w.stream}`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Producer-Id": w.id, "Producer-Epoch": "0", "Producer-Seq": String(seq) },
            body: JSON.stringify({ w: w.id, s: seq }),
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          await res.arrayBuffer();
          this.note(res.status, t0, what);
          if (res.status === 200 || res.status === 204) {
            this.slowAcks.push({ at: now(), ms: now() - t0, what });
            this.slowAcks.sort((a, b) => b.ms - a.ms).splice(5);
            break;
          }
          if (res.status !== 503) this.unexpected.push(`${what}: ${res.status}`);
        } catch (err) {
          this.failed(err, t0, what);
        }
        await sleep(RETRY_PAUSE_MS);
      }
      w.acked = seq + 1;
      w.ackTimes.push(now());
      await sleep(WRITE_PAUSE_MS);
    }
  }

  private live(timeoutMs: number): AbortSignal {
    return AbortSignal.any([this.readersCtl.signal, AbortSignal.timeout(timeoutMs)]);
  }

  private receive(r: Reader, items: Message[]): void {
    const t = now();
    for (const m of items) {
      r.items.push(m);
      r.seenAt.push(t);
    }
  }

  private async followLongPoll(base: string, r: Reader): Promise<void> {
    let offset = "-1";
    let cursor = "";
    while (!this.readersCtl.signal.aborted) {
      const t0 = now();
      try {
        const res = await fetch(`${base}/v1/stream/${r.stream}?offset=${offset}&live=long-poll${cursor ? `&cursor=${cursor}` : ""}`, {
          signal: this.live(LIVE_TIMEOUT_MS),
        });
        const body = await res.text();
        this.note(res.status, t0, `long-poll ${r.name}`);
        if (res.status === 200 || res.status === 204) {
          if (res.status === 200) this.receive(r, JSON.parse(body) as Message[]);
          offset = res.headers.get("Stream-Next-Offset") ?? offset;
          cursor = res.headers.get("Stream-Cursor") ?? cursor;
          continue;
        }
        if (res.status !== 503) this.unexpected.push(`long-poll ${r.name}: ${res.status}`);
      } catch (err) {
        this.failed(err, t0, `long-poll ${r.name}`);
      }
      await sleep(RETRY_PAUSE_MS);
    }
  }

  private async followSse(base: string, r: Reader): Promise<void> {
    let offset = "-1";
    const decoder = new TextDecoder();
    while (!this.readersCtl.signal.aborted) {
      const t0 = now();
      try {
        const res = await fetch(`${base}/v1/stream/${r.stream}?offset=${offset}&live=sse`, { signal: this.readersCtl.signal });
        this.note(res.status, t0, `sse ${r.name}`);
        if (res.status !== 200) {
          await res.arrayBuffer();
          if (res.status !== 503) this.unexpected.push(`sse ${r.name}: ${res.status}`);
          await sleep(RETRY_PAUSE_MS);
          continue;
        }
        // A data event counts only once its control event (with the next offset) arrived,
        // so a connection cut between the two re-reads it instead of seeing it twice.
        let buf = "";
        let pending: Message[] = [];
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
            const event = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const type = /^event: ?(.*)$/m.exec(event)?.[1];
            const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
            if (type === "data") pending.push(...(JSON.parse(data) as Message[]));
            else if (type === "control") {
              this.receive(r, pending);
              pending = [];
              offset = (JSON.parse(data) as { streamNextOffset: string }).streamNextOffset;
            }
          }
        }
      } catch (err) {
        this.failed(err, t0, `sse ${r.name}`);
      }
      await sleep(RETRY_PAUSE_MS);
    }
  }

  private async readAll(stream: string): Promise<Message[]> {
    const out: Message[] = [];
    let offset = "-1";
    for (;;) {
      const res = await fetch(`${this.instances[0].url}/v1/stream/${stream}?offset=${offset}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      if (res.status !== 200) throw new Error(`final read of ${stream}: ${res.status}`);
      out.push(...((await res.json()) as Message[]));
      offset = res.headers.get("Stream-Next-Offset")!;
      if (res.headers.get("Stream-Up-To-Date") === "true") return out;
    }
  }

  /** Stops the writers (each finishes its current append), lets readers catch up, judges. */
  async finish(faults: Fault[]): Promise<FaultRun> {
    this.stopWriting = true;
    this.stoppedAt = now();
    await Promise.all(this.writing);
    for (const s of this.streams) this.finalStore.set(s, await this.readAll(s).catch((e) => (this.unexpected.push(String(e)), [])));
    const deadline = now() + 10_000;
    while (now() < deadline && this.readers.some((r) => r.items.length < this.finalStore.get(r.stream)!.length)) await sleep(50);
    this.readersCtl.abort();
    await Promise.all(this.reading);
    return this.judge(faults);
  }

  private judge(faults: Fault[]): FaultRun {
    this.faultTimes = faults;
    const stored = (s: string) => this.finalStore.get(s)!;
    const ackAt = new Map<string, number>();
    for (const w of this.writers) w.ackTimes.forEach((t, s) => ackAt.set(`${w.id}#${s}`, t));
    let maxReaderLagMs = 0;
    for (const r of this.readers) {
      r.items.forEach((m, i) => {
        const acked = ackAt.get(`${m.w}#${m.s}`);
        if (acked !== undefined) maxReaderLagMs = Math.max(maxReaderLagMs, r.seenAt[i] - acked);
      });
    }
    const inOutage = (t: number) => faults.some((f) => t >= f.startedAt && t <= f.readyAt + this.outageTailMs);
    const firstAfter = (times: number[], t: number) => times.find((x) => x >= t) ?? Infinity;
    const recovery = faults.map((f) => {
      const writeResume = Math.max(...this.writers.map((w) => firstAfter(w.ackTimes, f.readyAt) - f.readyAt));
      const readResumes = this.readers.map((r) => [r.name, firstAfter(r.seenAt, f.readyAt) - f.readyAt] as const);
      const readResume = Math.max(...readResumes.map(([, ms]) => ms));
      const slowestReader = readResumes.find(([, ms]) => ms === readResume)?.[0] ?? "";
      // Longest gap between two acknowledgements of one writer across the fault.
      const writeStall = Math.max(
        ...this.writers.map((w) => {
          const before = [...w.ackTimes].reverse().find((t) => t < f.startedAt) ?? f.startedAt;
          return firstAfter(w.ackTimes, f.startedAt) - before;
        }),
      );
      return { kind: f.kind, downMs: f.readyAt - f.startedAt, writeResumeMs: writeResume, writeStallMs: writeStall, readResumeMs: readResume, slowestReader };
    });
    return {
      writers: this.writers,
      readers: this.readers.map((r) => ({ ...r, matches: JSON.stringify(r.items) === JSON.stringify(stored(r.stream)) })),
      stored,
      storedSeqs: (w) => stored(w.stream).filter((m) => m.w === w.id).map((m) => m.s),
      fiveHundreds: this.fiveHundreds,
      unexpected: this.unexpected,
      hangs: this.hangs,
      unavailableOutsideOutage: this.unavailable.filter((u) => !inOutage(u.at)).map((u) => `${u.what} at ${Math.round(u.at)}`),
      // How long a 503 took from when the request was sent, or from the fault for a request
      // already in flight then (it may have waited for a lock before the fault). A long-poll
      // cut off by the outage had been waiting by design; the bound is for the rest.
      max503Ms: Math.max(0, ...this.unavailable.filter((u) => !u.what.startsWith("long-poll")).map((u) => {
        const fault = faults.find((f) => u.at >= f.startedAt && u.at <= f.readyAt + this.outageTailMs);
        return u.at - Math.max(u.t0 ?? u.at - u.ms, fault?.startedAt ?? -Infinity);
      })),
      count503: this.unavailable.length,
      recovery,
      maxReaderLagMs,
    };
  }

  report(run: FaultRun): string {
    const ms = (x: number) => `${Math.round(x)} ms`;
    const lines = [
      `fault run: ${run.writers.reduce((a, w) => a + w.acked, 0)} appends acknowledged by ${run.writers.length} writers, ` +
        `${run.readers.length} live readers; ${run.count503} x 503 (slowest ${ms(run.max503Ms)} after the fault or the request began), ${run.fiveHundreds.length} other 5xx, ` +
        `${run.hangs.length} hangs, ${run.unexpected.length} unexpected; max reader lag ${ms(run.maxReaderLagMs)}`,
      ...run.recovery.map(
        (r) => `  ${r.kind}: Postgres down ${ms(r.downMs)}; after pg_isready: appends resumed ${ms(r.writeResumeMs)}, ` +
          `live reads resumed ${ms(r.readResumeMs)} (slowest ${r.slowestReader}); longest write stall ${ms(r.writeStallMs)}`,
      ),
    ];
    if (run.unexpected.length) lines.push(...run.unexpected.slice(0, 10).map((l) => `  unexpected: ${l}`));
    const slow = [...this.unavailable].sort((a, b) => b.ms - a.ms).filter((u) => u.ms > 200).slice(0, 5);
    lines.push(...slow.map((u) => `  slow 503: ${u.what} ${ms(u.ms)}, answered ${ms(u.at - this.t0)} into the run`));
    lines.push(...this.slowAcks.map((u) => `  slowest acknowledged: ${u.what} ${ms(u.ms)}, answered ${ms(u.at - this.t0)} into the run`));
    lines.push(...this.faultTimes.map((f) => `  ${f.kind}: issued ${ms(f.startedAt - this.t0)}, Postgres back ${ms(f.readyAt - this.t0)} into the run`));
    if (run.hangs.length) lines.push(...run.hangs.slice(0, 10).map((l) => `  hang: ${l}`));
    return lines.join("\n");
  }
}
