// Runs a function on a later turn of the event loop, after pending I/O callbacks
// (setImmediate on Bun, and on Deno where it exists; a zero timeout otherwise).
export const later: (f: () => void) => void =
  (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ?? ((f) => setTimeout(f, 0));
