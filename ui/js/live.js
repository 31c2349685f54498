// Live tail over the protocol's SSE mode, read with fetch() rather than EventSource so
// the bearer token can be sent as a header. The server ends SSE connections after a while
// (SSE_MAX_LIFETIME_MS); the tail reconnects from the last control event's offset, so no
// data is skipped or repeated. Pausing drops the connection; resuming catches up from
// where it paused.
import { authHeaders, streamUrl } from "./api.js";
import { fromBase64, positionOf } from "./format.js";

/**
 * Follows `name` from `offset`. onRows gets [{ position, kind, text | bytes }] as data
 * arrives; onState gets "live", "paused", "reconnecting", "closed" or an Error.
 */
export function liveTail(name, kind, offset, { onRows, onState }) {
  let next = offset;
  let controller;
  let running = false;
  let closed = false;

  async function run() {
    running = true;
    let failures = 0;
    while (running && !closed) {
      controller = new AbortController();
      try {
        const res = await fetch(`${streamUrl(name)}?offset=${encodeURIComponent(next)}&live=sse`, {
          headers: authHeaders(),
          signal: controller.signal,
          cache: "no-store",
        });
        if (!res.ok) {
          const text = (await res.text()).trim();
          throw new Error(`live tail of ${name}: ${res.status} ${res.statusText}${text ? ` — ${text}` : ""}`);
        }
        onState("live");
        failures = 0;
        await readEvents(res.body, (event, data) => handle(event, data));
        if (running && !closed) onState("reconnecting");
      } catch (err) {
        if (!running) break;
        failures++;
        onState(err instanceof Error ? err : new Error(String(err)));
        // Back off, but keep trying: the instance may be restarting behind the balancer.
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** failures)));
      }
    }
    if (closed) onState("closed");
  }

  function handle(event, data) {
    if (event === "data") {
      const at = positionOf(next);
      if (kind === "json") {
        const messages = JSON.parse(data);
        onRows(messages.map((m, i) => ({ position: at + i, kind, text: JSON.stringify(m) })));
      } else if (kind === "text") {
        onRows([{ position: at, kind, text: data }]);
      } else {
        onRows([{ position: at, kind, bytes: fromBase64(data.replace(/\n/g, "")) }]);
      }
    } else if (event === "control") {
      const control = JSON.parse(data);
      next = control.streamNextOffset;
      if (control.streamClosed) closed = true;
    }
  }

  run();
  return {
    get offset() {
      return next;
    },
    pause() {
      running = false;
      controller?.abort();
      onState("paused");
    },
    resume() {
      if (!running && !closed) run();
    },
    stop() {
      running = false;
      controller?.abort();
    },
  };
}

/** Parses an SSE body: events separated by blank lines, data lines joined by "\n". */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = /\r?\n\r?\n/.exec(buffer); end; end = /\r?\n\r?\n/.exec(buffer)) {
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const fieldName = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? "" : line.slice(colon + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (fieldName === "event") event = v;
        else if (fieldName === "data") data.push(v);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}
