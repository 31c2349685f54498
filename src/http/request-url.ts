// The request's URL, parsed once the same way everywhere it is needed.
import { BadRequest } from "../protocol/errors.ts";

export function requestUrl(request: Request): URL {
  try {
    return new URL(request.url);
  } catch {
    // Bun builds the URL from the Host header: an HTTP/1.0 request without one has none.
    throw new BadRequest("request URL is invalid (is the Host header missing?)");
  }
}
