// Whether this process runs on Bun (else Deno): the few places that differ ask here.
export const ON_BUN = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
