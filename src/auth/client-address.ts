// The client's address for limits when no token names the caller. X-Forwarded-For is
// believed only when TRUST_PROXY says how many proxies in front append to it: a client can
// write anything into the header, so only the entries our own proxies added count.
export function clientAddress(request: Request, socketAddress: string | undefined, trustedProxies: number): string {
  if (trustedProxies > 0) {
    const forwarded = request.headers.get("x-forwarded-for");
    if (forwarded) {
      const hops = forwarded.split(",").map((s) => s.trim()).filter(Boolean);
      // The last proxy appended the address it saw; N proxies mean the Nth entry from the end.
      const entry = hops[hops.length - trustedProxies];
      if (entry) return entry;
    }
  }
  return socketAddress ?? "unknown";
}
