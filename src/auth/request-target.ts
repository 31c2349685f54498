// The router and the guard must agree on which route a request is for. Handlers and the guard
// use the parsed URL's pathname. Two things can make the route differ from it:
// - the runtime may hand over request.url unnormalised (Deno keeps dot segments and raw bytes):
//   `/v1/stream/orders/../../healthz` is routed as a stream but names /healthz. Refused (400).
// - Elysia finds the path from index 11 of request.url on, so with a Host shorter than four
//   characters it routes on a cut path (`Host: x`, `/ab/v1/stream/s` routes as /v1/stream/s).
//   Such a request is checked as both paths; app.ts may pad short hosts before routing.

/** The path exactly as the runtime put it in request.url (between authority and query). */
export function rawPath(rawUrl: string): string {
  const start = rawUrl.indexOf("/", rawUrl.indexOf("//") + 2);
  return start === -1 ? "/" : untilQuery(rawUrl, start);
}

/** The path Elysia routes on (its default `standardHostname`: the first "/" at index 11 or later). */
export function routedPath(rawUrl: string): string {
  const start = rawUrl.indexOf("/", 11);
  return start === -1 ? "" : untilQuery(rawUrl, start);
}

function untilQuery(url: string, start: number): string {
  const query = url.indexOf("?", start + 1);
  const hash = url.indexOf("#", start + 1);
  const end = Math.min(query === -1 ? url.length : query, hash === -1 ? url.length : hash);
  return url.substring(start, end);
}
