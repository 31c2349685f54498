// Run by webhook-targets.test.ts under Bun and under Deno: postPinned (Connections.post) to
// a name that does not resolve (`.invalid`, RFC 2606), pinned to 127.0.0.1 where a server
// listens, and to 127.0.0.2 where another listens on the same port. Prints, as JSON, what
// the first server saw of the first send (the connection went to the checked address, with
// the name as Host), which server each of four sends reached, and how many connections each
// server accepted: a kept connection is reused only for the address it was opened to.
// Then a send that the receiver answers only after 2 s, cut by its signal at 300 ms, on the
// connection the sends before used (Bun) or a new one (Deno): it must fail at once and reach
// the receiver once, never again on another connection (Deno 2.9 re-sent it when kept alive).
import { createServer, type Server } from "node:http";
import { Connections } from "../../src/subscriptions/send.ts";

const listen = (address: string, port: number) =>
  new Promise<{ server: Server; connections: () => number }>((resolve, reject) => {
    let accepted = 0;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        if (req.url === "/slow") slowSeen++;
        setTimeout(() => {
          if (res.destroyed) return;
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ server: address, host: req.headers.host, path: req.url, body }));
        }, req.url === "/slow" ? 2_000 : 0);
      });
    });
    server.on("connection", () => accepted++);
    server.once("error", reject);
    server.listen(port, address, () => resolve({ server, connections: () => accepted }));
  });

let slowSeen = 0;
const one = await listen("127.0.0.1", 0);
const port = (one.server.address() as { port: number }).port;
const two = await listen("127.0.0.2", port);
const url = new URL(`http://hooks.invalid:${port}/hook?x=1`);
const connections = new Connections(1);
const send = async (address: string) => {
  const answer = await connections.post({ url, host: "hooks.invalid", address, family: 4 }, { "Content-Type": "application/json" }, '{"a":1}', AbortSignal.timeout(5_000), 1024);
  return { status: answer.status, seen: JSON.parse(answer.text) };
};
try {
  const sends = [];
  for (const address of ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1"]) sends.push(await send(address));
  const accepted = [one.connections(), two.connections()];
  const started = Date.now();
  const slowUrl = new URL(`http://hooks.invalid:${port}/slow`);
  const cut = await connections
    .post({ url: slowUrl, host: "hooks.invalid", address: "127.0.0.1", family: 4 }, {}, "{}", AbortSignal.timeout(300), 1024)
    .then(() => "answered", (err) => `failed: ${err}`);
  const cutAfterMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 2_500));
  console.log(JSON.stringify({ ok: true, ...sends[0], reached: sends.map((s) => s.seen.server), accepted, cut, cutAfterMs, slowSeen }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err) }));
}
connections.close();
one.server.close();
two.server.close();
