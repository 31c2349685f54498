// Lease timers on a manual clock (src/subscriptions/lease-timers.ts): the database is asked
// just after the deadline, a lease extended meanwhile is watched again for what it has
// left, watching again replaces the timer, and stop() leaves nothing behind. No sleeps.
import { expect, test } from "bun:test";
import { LeaseTimers } from "../../src/subscriptions/lease-timers.ts";
import { ManualClock } from "../support/manual-clock.ts";

const settle = () => new Promise((r) => queueMicrotask(() => r(undefined)));

test("a lease is looked at just after its deadline, and again for what an extension left", async () => {
  const clock = new ManualClock();
  const asked: [string, number][] = [];
  let left: number | undefined = 500;
  const timers = new LeaseTimers(async (id) => {
    asked.push([id, clock.now()]);
    return left;
  }, (id, err) => {
    throw new Error(`${id}: ${err}`);
  }, clock);

  timers.watch("s", 1_000);
  clock.advance(1_001);
  expect(asked).toEqual([]);
  clock.advance(1);
  expect(asked).toEqual([["s", 1_002]]);
  await settle();
  // Extended: 500 ms left, looked at again then.
  left = undefined;
  clock.advance(501);
  expect(asked).toHaveLength(1);
  clock.advance(1);
  expect(asked).toEqual([["s", 1_002], ["s", 1_504]]);
  await settle();
  expect(clock.pending).toBe(0);
});

test("watching again replaces the timer; stop clears every timer", () => {
  const clock = new ManualClock();
  const asked: string[] = [];
  const timers = new LeaseTimers(async (id) => void asked.push(id), () => {}, clock);
  timers.watch("a", 100);
  timers.watch("a", 300);
  timers.watch("b", 200);
  clock.advance(150);
  expect(asked).toEqual([]);
  clock.advance(100);
  expect(asked).toEqual(["b"]);
  timers.stop();
  expect(clock.pending).toBe(0);
  timers.watch("c", 1);
  clock.advance(1_000);
  expect(asked).toEqual(["b"]);
});
