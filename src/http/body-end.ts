// Lets code that wraps the app learn when a streamed response body (SSE) has ended: the
// Response is returned long before that, and wrapping its body would cost Bun its direct
// socket writes. Keyed by the Request, which the framework hands through unchanged.
const hooks = new WeakMap<Request, () => void>();

export function onBodyEnd(request: Request, fn: () => void): void {
  hooks.set(request, fn);
}

export function bodyEnded(request: Request): void {
  const fn = hooks.get(request);
  if (!fn) return;
  hooks.delete(request);
  fn();
}
