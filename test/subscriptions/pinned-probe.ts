// Run by webhook-targets.test.ts under Bun and under Deno: one Connections.post to a name that does
// not resolve (`.invalid`, RFC 2606), pinned to 127.0.0.1 where a server listens. Prints what
// that server saw as JSON: the connection went to the checked address, with the name as Host.
import { createServer } from "node:http";
import { Connections } from "../../src/subscriptions/send.ts";

const server = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ host: req.headers.host, path: req.url, body }));
  });
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as { port: number }).port;
const url = new URL(`http://hooks.invalid:${port}/hook?x=1`);
const connections = new Connections(1);
try {
  const answer = await connections.post({ url, host: "hooks.invalid", address: "127.0.0.1", family: 4 }, { "Content-Type": "application/json" }, '{"a":1}', AbortSignal.timeout(5_000), 1024);
  console.log(JSON.stringify({ ok: true, status: answer.status, seen: JSON.parse(answer.text) }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err) }));
}
connections.close();
server.close();
