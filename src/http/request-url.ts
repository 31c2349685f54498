// The request's URL, parsed once the same way everywhere it is needed.
import { BadRequest } from "../protocol/errors.ts";

// The guard and the handler both need it: parsed once per request.
const parsed = new WeakMap<Request, URL>();

export function requestUrl(request: Request): URL {
  let url = parsed.get(request);
  if (url) return url;
  try {
    url = new URL(request.url);
  } catch {
    // Bun builds the URL from the Host header: an HTTP/1.0 request without one has none.
    throw new BadRequest("request URL is invalid (is the Host header missing?)");
  }
  parsed.set(request, url);
  return url;
}
