// The fence of a wake (PROTOCOL 7.3) and the links a wake reports, as pure rules: the store
// locks the subscription row and hands it here, so what a stale or forged call is refused
// for is decided without a database (test/subscriptions/fence.test.ts).
import { SubscriptionError } from "./errors.ts";
import { formatOffset } from "./offsets.ts";
import { relativeOf } from "./subscription-requests.ts";

/** One link of a subscription with its stream's state. */
export interface LinkState {
  key: string;
  explicit: boolean;
  ackedPos: number;
  tail: number;
  /** The stream's earliest retained position: above ackedPos, data the worker never acked is gone. */
  earliest: number;
}

/** A callback, ack or release whose token's signature was verified. */
export interface WakeCall {
  id: string;
  /** "webhook" for callbacks, "pull-wake" for ack and release. */
  type: "webhook" | "pull-wake";
  token: { incarnation: number; generation: number; wakeId: string };
  generation: number;
  wakeId: string;
  /** Stream key -> position (already parsed). */
  acks: Map<string, number>;
  done: boolean;
}

/** What the fence compares a call with: the subscription row as locked. */
export interface FenceRow {
  incarnation: number;
  type: string;
  generation: number;
  wakeId: string | null;
  holder: string | null;
  leaseLapsed: boolean;
}

const fenced = (why: string) => new SubscriptionError("FENCED", why);

/** Throws unless the call belongs to the wake in flight under a live lease. */
export function checkFence(s: FenceRow, c: WakeCall): void {
  if (s.type !== c.type) {
    throw new SubscriptionError("INVALID_REQUEST", c.type === "webhook" ? "not a webhook subscription" : "not a pull-wake subscription");
  }
  // PROTOCOL 7.3: token, token generation, request generation and wake id must all match.
  if (c.token.incarnation !== s.incarnation) throw fenced("token belongs to an earlier subscription with this id");
  if (s.wakeId === null || c.token.generation !== s.generation || c.generation !== s.generation) throw fenced("wake generation is stale");
  if (c.wakeId !== s.wakeId || c.token.wakeId !== s.wakeId) throw fenced("wake_id does not match the current wake");
  if (s.leaseLapsed) throw fenced("the lease has expired");
  if (c.type === "pull-wake" && s.holder === null) throw fenced("the wake is not claimed");
}

/** Each ack names a linked stream, moves no cursor back, and goes no further than the tail. */
export function checkAcks(links: LinkState[], acks: Map<string, number>): void {
  for (const [key, pos] of acks) {
    const link = links.find((l) => l.key === key);
    if (!link) throw new SubscriptionError("INVALID_OFFSET", `stream ${key} is not linked to this subscription`);
    if (pos < link.ackedPos) throw new SubscriptionError("INVALID_OFFSET", `ack for ${key} is behind its committed cursor`);
    if (pos > link.tail) throw new SubscriptionError("INVALID_OFFSET", `ack for ${key} is beyond the stream's tail`);
  }
}

/** The `streams` of a webhook body or a claim's answer (PROTOCOL 7.1, 7.2). */
export function streamEntries(links: LinkState[]) {
  return links.map((l) => ({
    path: relativeOf(l.key),
    link_type: l.explicit ? "explicit" : "glob",
    acked_offset: formatOffset(l.ackedPos),
    tail_offset: formatOffset(l.tail),
    has_pending: l.tail > l.ackedPos,
    // Retention removed data past the cursor (notes/retention.md): reading from acked_offset
    // would be 410; the worker resumes at earliest_offset, knowing what lay between is gone.
    ...(l.ackedPos < l.earliest ? { earliest_offset: formatOffset(l.earliest), behind_earliest: true } : {}),
  }));
}
