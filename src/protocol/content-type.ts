// Content types compare by media type only, case-insensitively: "application/json;
// charset=utf-8" and "Application/JSON" name the same stream type.

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

// Every append compares its Content-Type with the stream's: the few distinct header values
// a server sees are worked out once.
const known = new Map<string, string>();

export function mediaType(contentType: string): string {
  let t = known.get(contentType);
  if (t === undefined) {
    t = contentType.split(";")[0].trim().toLowerCase();
    if (known.size >= 256) known.clear();
    known.set(contentType, t);
  }
  return t;
}

export function sameContentType(a: string, b: string): boolean {
  return mediaType(a) === mediaType(b);
}

export function isJsonType(contentType: string): boolean {
  return mediaType(contentType) === "application/json";
}

/** SSE carries text/* and JSON as UTF-8; everything else is base64 (PROTOCOL 5.8). */
export function isTextForSse(contentType: string): boolean {
  const t = mediaType(contentType);
  return t.startsWith("text/") || t === "application/json";
}
