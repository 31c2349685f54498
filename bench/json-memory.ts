// Peak memory of one JSON append (issue 25, item 3), per runtime and backend: a spawned
// server's peak RSS growth (VmHWM, reset through /proc/<pid>/clear_refs before the request)
// divided by the body's size, and the append's wall time.
//
//   bun bench/json-memory.ts [--runtimes bun,deno] [--backends postgres,pglite] [--cases tiny4m,small1m,normal100k]
//
// Postgres needs DATABASE_URL. MAX_MESSAGES_PER_APPEND is raised to 4M for the run, so the
// cases past the default cap are stored rather than refused.
import { readFileSync, writeFileSync } from "node:fs";
import { dropSchema, uniqueSchema } from "../test/support/backends.ts";
import { type Runtime, spawnServer } from "../test/support/spawn-server.ts";

const MB = 1024 * 1024;
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return (i > 0 ? process.argv[i + 1] : dflt).split(",");
};

/** The bodies measured: many tiny messages (the worst case per body byte) and ordinary ones. */
const CASES: Record<string, () => string> = {
  // 4M messages `1`: 2 bytes of body each.
  tiny4m: () => `[${"1,".repeat(4_000_000 - 1)}1]`,
  // 1M messages `{"k":123456}`-like, ~13 bytes each.
  small1m: () => JSON.stringify(Array.from({ length: 1_000_000 }, (_, i) => ({ k: 100_000 + (i % 900_000) }))),
  // 100k messages of ~87 bytes (the size test's 8.7 MB body).
  normal100k: () => JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ i, pad: "x".repeat(70) }))),
};

function status(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

const databaseUrl = process.env.DATABASE_URL || undefined;
for (const runtime of arg("runtimes", "bun,deno") as Runtime[]) {
  for (const backend of arg("backends", databaseUrl ? "postgres,pglite" : "pglite")) {
    for (const name of arg("cases", Object.keys(CASES).join(","))) {
      // A fresh server per case: memory a runtime took for one case is seldom given back.
      const schema = uniqueSchema("jsonmem");
      const server = await spawnServer({
        runtime,
        quiet: true,
        databaseUrl: backend === "postgres" ? databaseUrl : undefined,
        schema: backend === "postgres" ? schema : undefined,
        env: { LOG_LEVEL: "warn", MAX_MESSAGES_PER_APPEND: "4000000" },
      });
      try {
        const body = CASES[name]();
        const url = `${server.url}/v1/stream/mem-${name}`;
        await fetch(url, { method: "PUT", headers: { "Content-Type": "application/json" } });
        await new Promise((r) => setTimeout(r, 500)); // let the server settle
        const pid = server.proc.pid!;
        writeFileSync(`/proc/${pid}/clear_refs`, "5");
        const before = status(pid, "VmRSS");
        const t0 = performance.now();
        const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
        const ms = performance.now() - t0;
        const growth = status(pid, "VmHWM") - before;
        const tail = (await fetch(url, { method: "HEAD" })).headers.get("stream-next-offset");
        console.log(
          `${runtime} ${backend} ${name}: body ${(body.length / MB).toFixed(1)} MB, ${res.status} in ${(ms / 1000).toFixed(1)} s, ` +
            `peak RSS +${(growth / MB).toFixed(0)} MB = ${(growth / body.length).toFixed(1)}x body (RSS before ${(before / MB).toFixed(0)} MB, tail ${tail})`,
        );
      } finally {
        await server.stop();
        if (backend === "postgres") await dropSchema(schema);
      }
    }
  }
}
process.exit(0);
