// Stream-Cursor values for CDN collapsing (PROTOCOL 10.1): the number of 20-second
// intervals since 2024-10-09T00:00:00Z, never going backwards for a client that echoes one.

const CURSOR_EPOCH_MS = Date.UTC(2024, 9, 9);
const CURSOR_INTERVAL_MS = 20_000;

export function currentInterval(nowMs: number): number {
  return Math.floor((nowMs - CURSOR_EPOCH_MS) / CURSOR_INTERVAL_MS);
}

export function nextCursor(clientCursor: string | null | undefined, nowMs = Date.now(), random = Math.random): string {
  const interval = currentInterval(nowMs);
  const echoed = clientCursor && /^\d{1,15}$/.test(clientCursor) ? Number(clientCursor) : undefined;
  if (echoed === undefined || echoed < interval) return String(interval);
  // The client is at or ahead of the clock: jump forward 1..3600 s worth of intervals.
  const jitterSeconds = 1 + Math.floor(random() * 3600);
  return String(echoed + Math.max(1, Math.ceil((jitterSeconds * 1000) / CURSOR_INTERVAL_MS)));
}
