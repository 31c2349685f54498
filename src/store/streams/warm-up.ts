// Warm-up of a new pool connection, before the instance reports ready (Store.warmUp): the
// hot statements are prepared on it and the tables' catalog entries loaded into its backend,
// so the first appends and reads after a start do not pay for that (issue 30: first-request
// latency of a fresh instance).
import type { Queryable } from "../driver/db.ts";
import { type AppendRequest, GROUP_STATEMENTS, readStreams } from "./append.ts";
import { findStream, findStreamById } from "./streams.ts";

/**
 * Runs every hot statement once on `q` without changing anything: no stream has the empty
 * path or id 0, and the group statement with empty arrays updates, inserts and notifies
 * nothing.
 */
export async function warmConnection(q: Queryable, channel: string): Promise<void> {
  await findStream(q, "");
  await findStreamById(q, 0);
  const nowhere = { path: "" } as AppendRequest;
  for (const lock of [false, true]) await readStreams(q, [nowhere], lock, undefined);
  for (const st of GROUP_STATEMENTS.flat(2)) {
    const values: Record<string, unknown> = { channel, data: new Uint8Array(0), jData: new Uint8Array(0) };
    for (const slot of st.slots) if ("name" in slot && !(slot.name in values)) values[slot.name] = "{}";
    await q.run(st, values);
  }
}
