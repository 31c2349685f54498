// Idempotent producer rules (PROTOCOL 5.2.1): epoch fencing and per-epoch sequences.
import { BadRequest, ProducerFenced, ProducerSeqGap } from "./errors.ts";

export interface ProducerHeaders {
  id: string;
  epoch: number;
  seq: number;
}

export interface ProducerState {
  epoch: number;
  lastSeq: number;
}

export type ProducerDecision =
  | { kind: "accept"; next: ProducerState }
  | { kind: "duplicate"; state: ProducerState };

/** Decides what an append from a producer does; throws the protocol error when rejected. */
export function decideProducer(state: ProducerState | undefined, req: ProducerHeaders): ProducerDecision {
  if (!state) {
    // A producer the stream has never seen starts its sequence at 0.
    if (req.seq !== 0) throw new ProducerSeqGap(0, req.seq);
    return { kind: "accept", next: { epoch: req.epoch, lastSeq: 0 } };
  }
  if (req.epoch < state.epoch) throw new ProducerFenced(state.epoch);
  if (req.epoch > state.epoch) {
    if (req.seq !== 0) throw new BadRequest("a new producer epoch must start at Producer-Seq 0");
    return { kind: "accept", next: { epoch: req.epoch, lastSeq: 0 } };
  }
  if (req.seq <= state.lastSeq) return { kind: "duplicate", state };
  if (req.seq === state.lastSeq + 1) return { kind: "accept", next: { epoch: state.epoch, lastSeq: req.seq } };
  throw new ProducerSeqGap(state.lastSeq + 1, req.seq);
}
