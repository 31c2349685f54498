// Setting up streams before a measurement; this traffic is not measured.
export const STREAM_PREFIX = "/v1/stream/";

export const streamUrl = (base: string, name: string) => `${base}${STREAM_PREFIX}${name}`;

async function expectOk(res: Response, what: string): Promise<Response> {
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

export async function createStream(base: string, name: string, contentType: string): Promise<void> {
  const res = await fetch(streamUrl(base, name), { method: "PUT", headers: { "Content-Type": contentType } });
  await expectOk(res, `create ${name}`);
  await res.arrayBuffer();
}

export async function append(base: string, name: string, contentType: string, body: Uint8Array<ArrayBuffer> | string): Promise<void> {
  const res = await fetch(streamUrl(base, name), { method: "POST", headers: { "Content-Type": contentType }, body });
  await expectOk(res, `append ${name}`);
  await res.arrayBuffer();
}

/** Runs `count` jobs with at most `concurrency` in flight. */
export async function parallel(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export async function createStreams(base: string, names: string[], contentType: string): Promise<void> {
  await parallel(names.length, 16, (i) => createStream(base, names[i], contentType));
}

/**
 * Streams g<i % groups>/<i> for i < count: `groups` sets of streams, each one glob
 * (`g<k>/*`) wide. bench/wrk/append.lua names streams the same way with BENCH_GROUPS.
 */
export function groupedStreams(count: number, groups: number): string[] {
  return Array.from({ length: count }, (_, i) => `g${i % groups}/${i}`);
}
