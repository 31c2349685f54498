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
