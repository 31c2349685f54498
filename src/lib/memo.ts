// A value derived from an object, computed once per object and dropped with it. Readers of
// the same shared read result (live/shared-reads.ts) thus share its encodings: response
// bodies, SSE events.
export function memo<K extends object, T>(cache: WeakMap<K, T>, key: K, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) {
    v = make();
    cache.set(key, v);
  }
  return v;
}
