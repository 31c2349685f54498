// Polling, for what a test can only ask about (another process, Postgres): the probe's first
// defined answer, or a failure naming what never came. Inside one process, prefer an event
// (support/signal.ts).
export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, ms: number, what: string, everyMs = 25): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
