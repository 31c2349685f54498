// Stream keys are URL paths as sent ("/v1/stream/events/a"); subscription bodies speak in
// stream-root-relative paths ("events/a", PROTOCOL 6). Conversions live here.
import { CONTROL_PREFIX, hasControlChars, isReservedPath, STREAM_PREFIX } from "../protocol/paths.ts";
import { BadRequestCode } from "./errors.ts";

export { CONTROL_PREFIX, STREAM_PREFIX };
const MAX_PATH_BYTES = 1024;

/** A relative path from a request body, checked and normalised (no leading/trailing slash). */
export function relativePath(value: unknown, field: string): string {
  if (typeof value !== "string") throw BadRequestCode(`${field} must be a string`);
  const path = value.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path.length === 0) throw BadRequestCode(`${field} must name a stream path`);
  if (STREAM_PREFIX.length + path.length > MAX_PATH_BYTES) throw BadRequestCode(`${field} is too long`);
  if (hasControlChars(path)) throw BadRequestCode(`${field} contains control characters`);
  if (isReservedPath(path)) throw BadRequestCode(`${field} may not name the reserved __ds prefix`);
  return path;
}

export const streamKey = (relative: string) => `${STREAM_PREFIX}${relative}`;

export const relativeOf = (key: string) => (key.startsWith(STREAM_PREFIX) ? key.slice(STREAM_PREFIX.length) : key);
