// A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records every
// delivery (raw body, signature, arrival time) and answers as the test decides.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface Delivery {
  body: {
    subscription_id: string;
    wake_id: string;
    generation: number;
    streams: { path: string; link_type: string; acked_offset: string; tail_offset: string; has_pending: boolean }[];
    callback_url: string;
    callback_token: string;
  };
  raw: string;
  signature: string | null;
  at: number;
  /** When the request's connection closed (answered, or given up by the sender). */
  closedAt?: number;
}

export type Answer = { status?: number; body?: unknown; delayMs?: number };

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Decides each answer (default 200 {}); may be async. */
  answer: (d: Delivery) => Answer | Promise<Answer>;
  /** Resolves with the first delivery (from `from` on) that `match` accepts. */
  next(match?: (d: Delivery) => boolean, ms?: number, from?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export async function startReceiver(path = "/hook"): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const waiters = new Set<() => void>();
  const r: Receiver = {
    url: "",
    deliveries,
    answer: () => ({}),
    async next(match = () => true, ms = 10_000, from = 0) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = deliveries.slice(from).find(match);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching webhook delivery within ${ms} ms (${deliveries.length} received)`);
        await new Promise<void>((res) => {
          const w = () => res();
          waiters.add(w);
          setTimeout(() => {
            waiters.delete(w);
            res();
          }, 50);
        });
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(parts).toString("utf8");
      const d: Delivery = { body: JSON.parse(raw), raw, signature: (req.headers["webhook-signature"] as string) ?? null, at: Date.now() };
      deliveries.push(d);
      res.on("close", () => (d.closedAt = Date.now()));
      for (const w of [...waiters]) w();
      const a = await r.answer(d);
      if (a.delayMs) await new Promise((x) => setTimeout(x, a.delayMs));
      if (res.destroyed) return;
      res.writeHead(a.status ?? 200, { "content-type": "application/json" });
      res.end(JSON.stringify(a.body ?? {}));
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}${path}`;
  return r;
}
