// Bun allocates with mimalloc, which by default hands pages it no longer uses back to the
// kernel after 10 ms (madvise), and faults them in again when they are reused a moment
// later. Under a steady load of appends that churn cost a fifth of the server's CPU on
// the 2-core VM measured here: each madvise flushes the TLB of every core the process ran
// on (bench/README.md, "A fifth look": 5,589 madvise calls and 49,023 page faults in 10 s,
// against 728 and 10,225 with purging off). The setting is read once, when the process
// starts, so it travels in the environment: `npm start`, deploy/Dockerfile and the test
// and bench launchers (test/support/spawn-server.ts) set it; an operator can override it
// (10 is mimalloc's own default, which returns memory sooner).
export const BUN_ALLOCATOR_ENV = { MIMALLOC_PURGE_DELAY: "-1" } as const;
