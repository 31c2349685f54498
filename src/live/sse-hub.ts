// Live SSE readers of one stream share one hub on this instance. An SSE reader that has
// caught up joins its stream's hub. When a change notification carries the appended data
// (small appends, store/streams/change.ts), the hub writes it to every member at its start while
// the notification is being handled: no query, no wake-up. Otherwise the hub's waiter
// (the stream's only one for SSE) wakes it for one look-up (usually none: the notification
// updated the cache), one range read and one encoding per group of members at the same
// position. Either way a thousand readers of a stream cost a thousand socket writes per
// append and nothing else: no per-reader timers, promises or queries.
//
// The hub keeps the waiters' rule: register, then check, then wait. Every turn of its loop
// subscribes before reading the stream's state, so an append that commits at any moment
// either shows in that state or wakes the waiter.
import { isTextForSse } from "../protocol/content-type.ts";
import { ProtocolError, StreamNotFound } from "../protocol/errors.ts";
import { currentInterval } from "../protocol/cursor.ts";
import { controlJson, eventBytes, KEEPALIVE } from "../protocol/sse.ts";
import { type Change, mergeState, sameState } from "../store/streams/change.ts";
import type { ReadResult } from "../store/streams/chunks.ts";
import type { StreamRecord } from "../store/streams/records.ts";
import { isConnectionError } from "../store/index.ts";
import type { ChangeHook, Notifier } from "./notifier.ts";
import type { SharedReads } from "./shared-reads.ts";
import { log } from "../observability/log.ts";

const KEEPALIVE_MS = 15_000;

/** One SSE response that is live (caught up) on a stream. */
export interface Member {
  /** The position the reader has been sent everything up to. */
  pos: number;
  /** Its cursors never go below this (the client's cursor, PROTOCOL 10.1). */
  cursorBase: number;
  send(bytes: Uint8Array): void;
  /** False while the client has not read enough of what it was sent (runtime/direct-stream.ts). */
  hasRoom(): boolean;
  /** Called once when the hub ends the reader (stream closed and delivered, or gone). */
  finish(): void;
  /**
   * Called once when the hub drops the reader because it has no room for data the hub is
   * sending: it catches up on its own from `pos`, pulling as its client reads, and may join
   * again. `state` is the hub's latest state of the stream.
   */
  fellBehind(state: StreamRecord): void;
}

export class SseHubs implements ChangeHook {
  private readonly hubs = new Map<number, Hub>();

  constructor(
    private readonly reads: SharedReads,
    private readonly notifier: Notifier,
    private readonly chunkBytes: number,
  ) {}

  /** A change hook: the changed stream's hub, if any, takes the change over (Hub.applyChange). */
  applyChange(c: Change): void {
    this.hubs.get(c.id)?.applyChange(c);
  }

  /** Adds a caught-up reader of `stream`; returns the function that removes it. */
  join(stream: StreamRecord, member: Member): () => void {
    let hub = this.hubs.get(stream.id);
    if (!hub) {
      hub = new Hub(stream, this.reads, this.notifier, this.chunkBytes, () => {
        if (this.hubs.get(stream.id) === hub) this.hubs.delete(stream.id);
      });
      this.hubs.set(stream.id, hub);
    }
    return hub.add(member, stream);
  }

  /** Caught-up SSE readers of one stream on this instance (admin view). */
  readersOn(streamId: number): number {
    return this.hubs.get(streamId)?.size ?? 0;
  }

  get readerCount(): number {
    let n = 0;
    for (const h of this.hubs.values()) n += h.size;
    return n;
  }
}

class Hub {
  private readonly members = new Set<Member>();
  private running = false;
  private kick?: () => void;

  constructor(
    private stream: StreamRecord,
    private readonly reads: SharedReads,
    private readonly notifier: Notifier,
    private readonly chunkBytes: number,
    private readonly onEmpty: () => void,
  ) {}

  get size(): number {
    return this.members.size;
  }

  add(member: Member, seen: StreamRecord): () => void {
    this.members.add(member);
    // The reader may know a newer state than the hub, or be behind the hub's: either way
    // the hub re-checks now rather than at the next notification.
    if (!sameState(seen, this.stream) || member.pos < this.stream.tail) this.kick?.();
    if (!this.running) {
      this.running = true;
      this.run().finally(() => (this.running = false));
    }
    return () => {
      if (!this.members.delete(member)) return;
      if (this.members.size === 0) {
        this.onEmpty();
        this.kick?.();
      }
    };
  }

  private async run(): Promise<void> {
    try {
      while (this.members.size > 0) {
        const waiter = this.notifier.subscribe(this.stream.id, { tail: this.stream.tail, closed: this.stream.closed }, true);
        try {
          // Same tick as subscribe (see the file comment).
          if (!this.adopt(await this.reads.current(this.stream, waiter.since))) return;
          if (!this.anyBehind()) {
            const kick = new AbortController();
            this.kick = () => kick.abort();
            const woke = await waiter.wait(KEEPALIVE_MS, kick.signal);
            this.kick = undefined;
            if (this.members.size === 0) return;
            if (!woke && !kick.signal.aborted) {
              // A client that has not read what it was sent needs no keep-alive.
              for (const m of [...this.members]) if (m.hasRoom()) this.write(m, KEEPALIVE);
              continue;
            }
            if (!this.adopt(await this.reads.current(this.stream, waiter.since))) return;
          }
        } finally {
          waiter.cancel();
        }
        await this.deliver();
      }
    } catch (err) {
      // A failed read ends the members' responses; their clients reconnect and get a
      // proper status from a fresh request.
      if (!isConnectionError(err) && !(err instanceof ProtocolError)) log.error({ err }, "sse delivery failed");
      this.endAll();
    } finally {
      this.onEmpty();
    }
  }

  /** Takes over the stream's latest state; false (after ending every member) when it is gone. */
  private adopt(s: StreamRecord | undefined): boolean {
    if (!s || s.expired || s.deleted) {
      this.endAll();
      return false;
    }
    // A look-up that started before a notification the hub has already taken over may
    // return an older state: never step back.
    const known = this.stream;
    if (s.id !== known.id || mergeState(known, s) !== known) this.stream = s;
    return true;
  }

  private anyBehind(): boolean {
    if (this.stream.closed) return this.members.size > 0;
    for (const m of this.members) if (m.pos < this.stream.tail) return true;
    return false;
  }

  /**
   * A notified change (a hook of the notifier, run before any waiter wakes). Its state
   * becomes the hub's; when it carries the appended data, members at its start get it
   * right here, with no query and no wake-up in between.
   */
  applyChange(c: Change): void {
    // A notification older than what the hub knows (its look-up overtook it) brings nothing.
    if (!c.state || c.state.tail < this.stream.tail) return;
    this.stream = mergeState(this.stream, c.state);
    const data = c.data;
    if (!data) return;
    const group: Member[] = [];
    for (const m of this.members) if (m.pos === data.from) group.push(m);
    if (group.length > 0) this.send(group, data.from, { units: data.units, next: c.state.tail });
  }

  /** Sends every member what it lacks up to the adopted state (data and control events). */
  private async deliver(): Promise<void> {
    for (;;) {
      const s = this.stream;
      const groups = new Map<number, Member[]>();
      for (const m of [...this.members]) {
        if (m.pos >= s.tail && !s.closed) continue;
        // No read for a client that has not taken what it was sent (see send()).
        if (!m.hasRoom()) {
          this.dropBehind(m, s);
          continue;
        }
        const group = groups.get(m.pos);
        if (group) group.push(m);
        else groups.set(m.pos, [m]);
      }
      if (groups.size === 0) return;
      for (const [pos, group] of groups) {
        const result = pos < s.tail ? await this.reads.read(s, pos, this.chunkBytes) : undefined;
        // Nothing stored where the state says data is: the stream was deleted or expired
        // between the look-up and the read. Members end; reconnecting, they get the status.
        if (result && result.next <= pos) throw new StreamNotFound(`stream ${s.id} vanished during a read`);
        this.send(group, pos, result);
      }
    }
  }

  /** Sends the members of `group` still at `pos` the data of `result` and a control event. */
  private send(group: Member[], pos: number, result: ReadResult | undefined): void {
    const s = this.stream;
    const next = result ? result.next : pos;
    const upToDate = next >= s.tail;
    const closed = s.closed && upToDate;
    const text = isTextForSse(s.contentType);
    const interval = currentInterval(Date.now());
    let cursor = -1;
    let bytes: Uint8Array | undefined;
    for (const m of group) {
      // Gone, or moved on (a notification delivered to it while a read was in flight).
      if (m.pos !== pos || !this.members.has(m)) continue;
      // A client that stopped reading gets nothing more queued for it here: the hub would
      // otherwise hold every later change for it (issue 25). It leaves and pulls on its own.
      if (!m.hasRoom()) {
        this.dropBehind(m, s);
        continue;
      }
      const c = Math.max(m.cursorBase, interval);
      if (c !== cursor || !bytes) {
        cursor = c;
        bytes = eventBytes(result, controlJson(next, upToDate, closed, c), s, text);
      }
      if (!this.write(m, bytes)) continue;
      m.pos = next;
      if (closed) {
        this.members.delete(m);
        m.finish();
      }
    }
  }

  /** Lets a member without room go on its own (Member.fellBehind), as leaving would. */
  private dropBehind(m: Member, s: StreamRecord): void {
    this.members.delete(m);
    if (this.members.size === 0) {
      this.onEmpty();
      this.kick?.();
    }
    m.fellBehind(s);
  }

  /** Writes to one member; a broken connection ends that member, never the others. */
  private write(m: Member, bytes: Uint8Array): boolean {
    try {
      m.send(bytes);
      return true;
    } catch (err) {
      log.warn({ err }, "sse write failed");
      this.members.delete(m);
      m.finish();
      return false;
    }
  }

  private endAll(): void {
    const members = [...this.members];
    this.members.clear();
    for (const m of members) m.finish();
  }
}
