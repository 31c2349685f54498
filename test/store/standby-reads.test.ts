// StandbyReads (store/streams/standby-reads.ts) on two embedded databases: the "standby" holds the
// same stream with fewer appends (a lag), or fails like an unreachable server. A read
// returns the primary's bytes in every case, from the standby as far as it has them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DatabaseUnavailable } from "../../src/store/driver/availability.ts";
import { loadForkChain, segmentsFor } from "../../src/store/streams/chunks.ts";
import type { Db } from "../../src/store/driver/db.ts";
import { Store } from "../../src/store/index.ts";
import { StandbyReads } from "../../src/store/streams/standby-reads.ts";
import { visible } from "../../src/store/streams/streams.ts";
import { openMigratedPglite } from "../support/backends.ts";
import { appendRequest, createParams } from "../support/store-fixture.ts";

const BINARY = "application/octet-stream";
const piece = (i: number) => new Uint8Array(100).fill(i);
const open = openMigratedPglite;
const fill = async (store: Store, n: number) => {
  await store.create(createParams("/s", { contentType: BINARY }));
  for (let i = 0; i < n; i++) await store.append(appendRequest("/s", piece(i), { contentType: BINARY }));
};

describe("StandbyReads", () => {
  let primary: Db;
  let standby: Db;
  beforeAll(async () => {
    [primary, standby] = await Promise.all([open(), open()]);
    // Same stream id on both; the standby has 6 of the primary's 10 appends.
    await fill(new Store(primary), 10);
    await fill(new Store(standby), 6);
  }, 60_000);
  afterAll(async () => {
    await primary?.close();
    await standby?.close();
  });

  const segmentsOf = async () => {
    const s = visible(await new Store(primary).find("/s"));
    return { s, segments: segmentsFor(await loadForkChain(primary, s), s.tail) };
  };
  const bytes = (units: Uint8Array[]) => Buffer.concat(units);
  const expected = (from: number, to: number) => Buffer.concat(Array.from({ length: to - from }, (_, i) => piece(from + i)));

  test("what the standby has is read there; the rest up to the primary's tail on the primary", async () => {
    const reads = new StandbyReads(primary, [standby]);
    const { s, segments } = await segmentsOf();
    const all = await reads.read(segments, 0, s.tail, 1 << 20);
    expect({ next: all.next, same: bytes(all.units).equals(expected(0, 10)) }).toEqual({ next: 1000, same: true });
    expect(reads.stats).toEqual({ standby: 0, completedOnPrimary: 1, primary: 0 });
    // Within what the standby has, or cut by the byte budget: the standby alone.
    const early = await reads.read(segments, 100, s.tail, 300);
    expect({ next: early.next, same: bytes(early.units).equals(expected(1, 4)) }).toEqual({ next: 400, same: true });
    // Past what the standby has: all from the primary, after an empty standby answer.
    const late = await reads.read(segments, 800, s.tail, 1 << 20);
    expect({ next: late.next, same: bytes(late.units).equals(expected(8, 10)) }).toEqual({ next: 1000, same: true });
    expect(reads.stats).toEqual({ standby: 1, completedOnPrimary: 2, primary: 0 });
  });

  test("a standby that cannot be reached is passed over for the primary", async () => {
    const down = { ...standby, available: true, rows: () => Promise.reject(new DatabaseUnavailable()), copyOut: undefined } as unknown as Db;
    const reads = new StandbyReads(primary, [down]);
    const { s, segments } = await segmentsOf();
    const all = await reads.read(segments, 0, s.tail, 1 << 20);
    expect({ next: all.next, same: bytes(all.units).equals(expected(0, 10)) }).toEqual({ next: 1000, same: true });
    expect(reads.stats).toEqual({ standby: 0, completedOnPrimary: 0, primary: 1 });
  });
});
