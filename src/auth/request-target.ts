// The router and the guard must agree on which route a request is for. Elysia picks the route
// from the text of request.url after the first "/" at index 11 or later, unparsed, while the
// guard and the handlers use the parsed URL's pathname. They differ when the runtime leaves
// dot segments or raw bytes in request.url (Deno does) or when a very short Host header puts
// the origin's end before index 11 (`Host: x`): `/v1/stream/../../healthz` would then be routed
// as a stream while being checked as /healthz. Such requests are refused instead.
export function routedPath(rawUrl: string): string {
  const start = rawUrl.indexOf("/", 11);
  if (start === -1) return "";
  const query = rawUrl.indexOf("?", start + 1);
  return query === -1 ? rawUrl.substring(start) : rawUrl.substring(start, query);
}
