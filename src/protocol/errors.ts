// One class per protocol condition. http/ maps them to a response in one place
// (http/respond.ts); nothing decides a status by reading message text.

export type HeaderMap = Record<string, string>;

export abstract class ProtocolError extends Error {
  abstract readonly status: number;
  headers: HeaderMap = {};
}

export class BadRequest extends ProtocolError {
  readonly status = 400;
}

export class StreamNotFound extends ProtocolError {
  readonly status = 404;
  constructor(message = "stream not found") {
    super(message);
  }
}

/** 410: the stream was deleted but forks still read its data (PROTOCOL 4.2). */
export class StreamGone extends ProtocolError {
  readonly status = 410;
  constructor(message = "stream has been deleted") {
    super(message);
  }
}

export class Conflict extends ProtocolError {
  readonly status = 409;
}

/** 409 for an append to a closed stream: carries the final offset (PROTOCOL 5.2). */
export class StreamClosedConflict extends Conflict {
  constructor(finalOffset: string) {
    super("stream is closed");
    this.headers = { "Stream-Closed": "true", "Stream-Next-Offset": finalOffset };
  }
}

/**
 * 409 for a compare-and-append whose Stream-Expected-Offset is not the stream's tail: carries
 * the current tail, from which the writer can retry (README, compare-and-append extension).
 */
export class ExpectedOffsetConflict extends Conflict {
  constructor(expected: string, tail: string) {
    super(`Stream-Expected-Offset ${expected} is not the stream's tail ${tail}`);
    this.headers = { "Stream-Next-Offset": tail };
  }
}

/** 403: a producer with an older epoch than the server's (zombie fencing, 5.2.1). */
export class ProducerFenced extends ProtocolError {
  readonly status = 403;
  constructor(currentEpoch: number) {
    super(`producer epoch is stale; current epoch is ${currentEpoch}`);
    this.headers = { "Producer-Epoch": String(currentEpoch) };
  }
}

/** 409: the producer skipped a sequence number (5.2.1). */
export class ProducerSeqGap extends Conflict {
  constructor(expected: number, received: number) {
    super(`producer sequence gap: expected ${expected}, received ${received}`);
    this.headers = { "Producer-Expected-Seq": String(expected), "Producer-Received-Seq": String(received) };
  }
}

export class PayloadTooLarge extends ProtocolError {
  readonly status = 413;
}

export class MethodNotAllowed extends ProtocolError {
  readonly status = 405;
}

export class NotImplemented extends ProtocolError {
  readonly status = 501;
}

/**
 * The client closed the connection before its append was committed, so it was not stored.
 * Nobody reads the answer; the status (RFC 9110 has none for it) only keeps it out of the
 * 5xx counts and the error log.
 */
export class ClientGone extends ProtocolError {
  readonly status = 400;
  constructor() {
    super("client closed the request before it was committed; nothing was stored");
  }
}

/**
 * Errors of the subscription control APIs (PROTOCOL 6, 7): a status and a machine-readable
 * code, answered as `{"error": {"code", "message", ...detail}}`.
 */
export type SubscriptionErrorCode =
  | "INVALID_REQUEST"
  | "NOT_FOUND"
  | "SUBSCRIPTION_NOT_FOUND"
  | "SUBSCRIPTION_ALREADY_EXISTS"
  | "WEBHOOK_URL_REJECTED"
  | "TOKEN_INVALID"
  | "TOKEN_EXPIRED"
  | "FENCED"
  | "ALREADY_CLAIMED"
  | "NO_PENDING_WORK"
  | "INVALID_OFFSET"
  | "METHOD_NOT_ALLOWED";

const SUBSCRIPTION_STATUS: Record<SubscriptionErrorCode, number> = {
  INVALID_REQUEST: 400,
  WEBHOOK_URL_REJECTED: 400,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  NOT_FOUND: 404,
  SUBSCRIPTION_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  SUBSCRIPTION_ALREADY_EXISTS: 409,
  FENCED: 409,
  ALREADY_CLAIMED: 409,
  NO_PENDING_WORK: 409,
  INVALID_OFFSET: 409,
};

export class SubscriptionError extends ProtocolError {
  readonly status: number;
  constructor(
    readonly code: SubscriptionErrorCode,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = SUBSCRIPTION_STATUS[code];
  }

  get body(): string {
    return JSON.stringify({ error: { code: this.code, message: this.message, ...this.detail } });
  }
}

/** 401: no usable credentials (RFC 6750 3): the challenge tells clients to send a bearer token. */
export class Unauthorized extends ProtocolError {
  readonly status = 401;
  constructor(message: string, tokenPresented: boolean) {
    super(message);
    this.headers = {
      "WWW-Authenticate": tokenPresented ? 'Bearer realm="durable-streams", error="invalid_token"' : 'Bearer realm="durable-streams"',
    };
  }
}

/** 403: the credentials are valid but do not allow this operation on this path. */
export class Forbidden extends ProtocolError {
  readonly status = 403;
}

/** 429 with Retry-After (PROTOCOL 12.5): over a rate or concurrency limit. */
export class TooManyRequests extends ProtocolError {
  readonly status = 429;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { "Retry-After": String(retryAfterSeconds) };
  }
}

/**
 * 421: this server does not answer for the authority the request names (RFC 9110 15.5.20);
 * a server without auth answers only loopback names (DNS rebinding, issue 25.7).
 */
export class MisdirectedRequest extends ProtocolError {
  readonly status = 421;
}

export class UriTooLong extends ProtocolError {
  readonly status = 414;
}

export class HeadersTooLarge extends ProtocolError {
  readonly status = 431;
}

/** 408: the request body stopped arriving (connection idle limit). */
export class RequestTimeout extends ProtocolError {
  readonly status = 408;
}

/**
 * 410: the offset is before the earliest retained position (PROTOCOL 5.6); the header
 * tells the client where the stream's data now begins.
 */
export class OffsetGone extends ProtocolError {
  readonly status = 410;
  constructor(earliestOffset: string) {
    super("offset is before the earliest retained offset");
    this.headers = { "Stream-Earliest-Offset": earliestOffset };
  }
}
