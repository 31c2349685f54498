// Names the protocol fixes, defined once: where streams live in the URL space, the reserved
// subscription prefix (PROTOCOL 6: "__ds" is never a stream), and what counts as a control
// character in an identifier or path that ends up in a header, a log line or a row.

/** Every stream's URL path starts with this. */
export const STREAM_PREFIX = "/v1/stream/";
/** The reserved first segment under STREAM_PREFIX (subscriptions, signing keys). */
export const RESERVED_SEGMENT = "__ds";
/** The subscription API's URL path prefix. */
export const CONTROL_PREFIX = `${STREAM_PREFIX}${RESERVED_SEGMENT}`;

/** Whether a stream-root-relative path names the reserved prefix or something under it. */
export function isReservedPath(relative: string): boolean {
  return relative === RESERVED_SEGMENT || relative.startsWith(`${RESERVED_SEGMENT}/`);
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Whether a string holds a C0 control character or DEL (ids, worker names, paths). */
export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}
