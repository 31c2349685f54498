// SQL identifiers (schema and channel names come from settings) quoted once, the same way
// for the pool, PGlite and the listener.
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
