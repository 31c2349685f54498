// What the per-backend store tests share: one database and Store per describe block (opened
// before its tests, drained and closed after), and builders for the store's create and append
// inputs with the defaults every test would otherwise spell out.
import { afterAll, beforeAll } from "bun:test";
import type { Db } from "../../src/store/driver/db.ts";
import { Store, type StoreOptions } from "../../src/store/index.ts";
import type { AppendRequest } from "../../src/store/streams/append.ts";
import type { CreateParams } from "../../src/store/streams/streams.ts";
import type { Backend } from "./backends.ts";

const JSON_TYPE = "application/json";

/**
 * Opens `backend` once for the enclosing describe block and hands the database and a Store
 * over it to `ready` (which may set up more); the Store is drained and the database closed
 * after the block. Tests in the block share them, so each uses stream paths of its own.
 */
export function useStore(backend: Backend, opts: StoreOptions, ready: (opened: { db: Db; store: Store }) => unknown): void {
  let db: Db | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    db = await backend.open();
    store = new Store(db, opts);
    await ready({ db, store });
  }, 60_000); // PGlite starts slowly on a loaded machine
  afterAll(async () => {
    await store?.drained();
    await db?.close();
  });
}

/** A create of an open, empty, never-expiring stream; text/plain unless `over` says otherwise. */
export function createParams(path: string, over: Partial<CreateParams> = {}): CreateParams {
  const contentType = over.contentType ?? "text/plain";
  return { path, contentType, contentTypeGiven: true, isJson: contentType === JSON_TYPE, ttlSeconds: null, expiresAt: null, closed: false, ...over };
}

/** A plain append of `body` (text is UTF-8 encoded): no messages, no close, no sequence. */
export function appendRequest(path: string, body: Uint8Array | string, over: Partial<AppendRequest> = {}): AppendRequest {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return { path, contentType: "text/plain", body: bytes, messages: null, close: false, streamSeq: null, ...over };
}
