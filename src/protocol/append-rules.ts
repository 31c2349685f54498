// What one append does to a stream, decided without I/O (PROTOCOL 5.2, 5.2.1, 5.3, and the
// compare-and-append extension: Stream-Expected-Offset). store/streams/append.ts feeds it the stream
// state its group statement compares-and-sets against, and applies the outcome.
import { BadRequest, Conflict, ExpectedOffsetConflict, StreamClosedConflict } from "./errors.ts";
import { formatOffset } from "./offsets.ts";
import { decideProducer, type ProducerHeaders, type ProducerState } from "./producer.ts";
import { sameContentType } from "./content-type.ts";
import type { JsonMessages } from "./json.ts";

export interface ProducerTuple {
  id: string;
  epoch: number;
  seq: number;
}

export interface WriterState {
  contentType: string;
  isJson: boolean;
  tail: number;
  closed: boolean;
  closedBy: ProducerTuple | null;
  lastSeq: string | null;
  producers: Map<string, ProducerState>;
}

export interface AppendInput {
  contentType: string | null;
  /** Raw body bytes (binary streams). */
  body: Uint8Array;
  /** The body's messages (protocol/json.ts) when the request body is JSON. */
  messages: JsonMessages | null;
  close: boolean;
  streamSeq: string | null;
  producer?: ProducerHeaders;
  /**
   * Stream-Expected-Offset (compare-and-append): append only if the stream's tail offset
   * token is exactly this one. Absent (undefined or null) on ordinary appends.
   */
  expectedOffset?: string | null;
}

export type AppendDecision =
  /**
   * New data and/or closure to write: `data` is a binary append's body or a JSON append's
   * messages (JsonMessages.data), and `units` how far it moves the tail (bytes or messages).
   */
  | { kind: "write"; data: Uint8Array; units: number; closes: boolean; producer?: { id: string; next: ProducerState } }
  /** Nothing to write: an idempotent retry or a repeated close. */
  | { kind: "noop"; producerState?: ProducerState };

export function decideAppend(state: WriterState, input: AppendInput): AppendDecision {
  const empty = input.body.byteLength === 0;
  const p = input.producer;
  // Error precedence (5.2): closed first, then content type, then sequence (producer, then
  // Stream-Seq), then the expected offset (README, compare-and-append extension).
  if (state.closed) {
    if (p) {
      // 5.2.1: only the (producerId, epoch, seq) that closed the stream is a duplicate; any
      // other producer tuple, close-only or not, is an append to a closed stream.
      if (isClosingTuple(state.closedBy, p)) return { kind: "noop", producerState: { epoch: p.epoch, lastSeq: p.seq } };
      throw new StreamClosedConflict(formatOffset(state.tail));
    }
    // 5.2, 5.3: a close-only request without producer headers is idempotent.
    if (empty && input.close) return { kind: "noop" };
    throw new StreamClosedConflict(formatOffset(state.tail));
  }
  if (!empty) {
    if (input.contentType === null) throw new BadRequest("Content-Type is required when appending data");
    if (!sameContentType(input.contentType, state.contentType)) {
      throw new Conflict(`Content-Type ${input.contentType} does not match the stream's ${state.contentType}`);
    }
  }
  let producer: { id: string; next: ProducerState } | undefined;
  if (p) {
    const decision = decideProducer(state.producers.get(p.id), p);
    if (decision.kind === "duplicate") return { kind: "noop", producerState: decision.state };
    producer = { id: p.id, next: decision.next };
  }
  if (input.streamSeq !== null && state.lastSeq !== null && input.streamSeq <= state.lastSeq) {
    throw new Conflict(`Stream-Seq ${input.streamSeq} is not greater than the last sequence ${state.lastSeq}`);
  }
  if (state.isJson && !empty && input.messages === null) {
    throw new BadRequest("JSON stream appends must carry a JSON body");
  }
  const data = empty ? EMPTY : state.isJson ? input.messages!.data : input.body;
  const units = empty ? 0 : state.isJson ? input.messages!.count : input.body.byteLength;
  // Compare-and-append comes last: a producer's duplicate was answered above even though the
  // tail has moved since, and a refused append changes nothing (no producer seq, Stream-Seq or
  // data consumed), so the writer can retry with the tail it is given.
  const expected = input.expectedOffset;
  if (expected !== undefined && expected !== null) {
    const tail = formatOffset(state.tail);
    if (tail !== expected) throw new ExpectedOffsetConflict(expected, tail);
  }
  return { kind: "write", data, units, closes: input.close, producer };
}

const EMPTY = new Uint8Array(0);

function isClosingTuple(closedBy: ProducerTuple | null, p: ProducerHeaders): boolean {
  return closedBy !== null && closedBy.id === p.id && closedBy.epoch === p.epoch && closedBy.seq === p.seq;
}

/** Advances the in-memory writer state past an accepted write (so a batch can chain). */
export function applyWrite(state: WriterState, input: AppendInput, d: Extract<AppendDecision, { kind: "write" }>): void {
  state.tail += d.units;
  if (input.streamSeq !== null) state.lastSeq = input.streamSeq;
  if (d.producer) state.producers.set(d.producer.id, d.producer.next);
  if (d.closes) {
    state.closed = true;
    state.closedBy = input.producer ? { ...input.producer } : null;
  }
}
