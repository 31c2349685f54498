// gzip for catch-up bodies when the client accepts it; small bodies are not worth it.
const MIN_COMPRESS_BYTES = 1024;

export function maybeCompress(request: Request, response: Response, size: number): Response {
  if (size < MIN_COMPRESS_BYTES || !response.body) return response;
  const accept = request.headers.get("accept-encoding") ?? "";
  if (!/\bgzip\b/i.test(accept)) return response;
  const headers = new Headers(response.headers);
  headers.set("Content-Encoding", "gzip");
  headers.append("Vary", "Accept-Encoding");
  headers.delete("Content-Length");
  const body = response.body.pipeThrough(new CompressionStream("gzip"));
  return new Response(body, { status: response.status, headers });
}
