// Webhook URL checks against server-side request forgery (PROTOCOL 6.2, 12.8; issue 25.6).
// By default a webhook must use https and must not reach this machine, a private network,
// link-local or metadata addresses, CGNAT, or the IPv6 equivalents, in any spelling the URL
// parser accepts (2130706433, 0x7f.1, 127.1, 0177.0.0.1 and `127.0.0.1.` all parse to
// 127.0.0.1; `localhost.` is localhost). WEBHOOK_ALLOW_PRIVATE_TARGETS=true lifts the
// address rules for development and tests, and allows plain http to this machine only
// (loopback: the callback token does not cross a network in clear; the official suite also
// expects http://10.0.0.1 refused with its receivers on localhost allowed). At delivery time the
// host name is resolved once, every address is checked, and the connection goes to the
// checked address (resolveTarget + send.ts), so DNS cannot change the answer in between.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { SubscriptionError } from "../protocol/errors.ts";

const reject = (message: string) => new SubscriptionError("WEBHOOK_URL_REJECTED", message);

const METADATA_NAMES = new Set(["metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"]);

const PRIVATE_HINT = "(WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it for development)";

/** The address rules: false when WEBHOOK_ALLOW_PRIVATE_TARGETS=true. */
export interface TargetPolicy {
  allowPrivate: boolean;
}

const DEFAULT_POLICY: TargetPolicy = { allowPrivate: false };

/** Parses and checks a webhook URL at subscription creation; returns it unchanged. */
export function checkWebhookUrl(raw: string, policy: TargetPolicy = DEFAULT_POLICY): string {
  parseWebhookUrl(raw, policy);
  return raw;
}

function parseWebhookUrl(raw: string, policy: TargetPolicy): { url: URL; host: string } {
  // deno-lint-ignore no-control-regex
  if (raw.length > 2048 || /[\u0000-\u0020\u007f]/.test(raw)) throw reject("webhook.url must be at most 2048 characters, without spaces or control characters");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw reject("webhook.url must be an absolute URL");
  }
  if (url.username || url.password) throw reject("webhook.url must not carry credentials");
  if (url.protocol !== "https:" && url.protocol !== "http:") throw reject("webhook.url must use https");
  const host = bareHost(url.hostname);
  if (url.protocol === "http:") {
    // Plain http only where the callback token never leaves this machine.
    if (policy.allowPrivate && isLoopbackHost(host)) return { url, host };
    throw reject(`webhook.url must use https (plain http only to this machine, with WEBHOOK_ALLOW_PRIVATE_TARGETS=true)`);
  }
  if (policy.allowPrivate) return { url, host };
  if (host === "localhost" || host.endsWith(".localhost") || METADATA_NAMES.has(host)) {
    throw reject(`webhook.url must not target this machine or a metadata service ${PRIVATE_HINT}`);
  }
  if (isIP(host) !== 0 && isBlockedAddress(host)) {
    throw reject(`webhook.url must not target a loopback, private, link-local or otherwise non-public address ${PRIVATE_HINT}`);
  }
  return { url, host };
}

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Where a delivery connects: the URL, and the one address that was checked for it. */
export interface Target {
  url: URL;
  /** The host as the URL names it (Host header, TLS server name). */
  host: string;
  address: string;
  family: 4 | 6;
}

/**
 * The check at delivery time: the URL again (rules may have been tightened), then every
 * address its host resolves to, once. Returns the address to connect to. Throws
 * WEBHOOK_URL_REJECTED.
 */
export async function resolveTarget(raw: string, policy: TargetPolicy = DEFAULT_POLICY, resolve: Resolver = systemResolver): Promise<Target> {
  const { url, host } = parseWebhookUrl(raw, policy);
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      throw reject(`webhook host ${host} does not resolve`);
    }
  }
  if (addresses.length === 0) throw reject(`webhook host ${host} does not resolve`);
  const bad = policy.allowPrivate ? undefined : addresses.find(isBlockedAddress);
  if (bad) throw reject(`webhook host ${host} resolves to a non-public address (${bad}) ${PRIVATE_HINT}`);
  const remote = url.protocol === "http:" ? addresses.find((a) => !isLoopbackAddress(a)) : undefined;
  if (remote) throw reject(`webhook host ${host} resolves to ${remote}: plain http only to this machine`);
  const address = addresses[0];
  return { url, host, address, family: isIP(address) === 6 ? 6 : 4 };
}

const bareHost = (hostname: string) => hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");

/** A name or literal for this machine: localhost (and *.localhost), 127/8, ::1, ::ffff:127/104. */
function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || (isIP(host) !== 0 && isLoopbackAddress(host));
}

function isLoopbackAddress(address: string): boolean {
  const kind = isIP(address);
  if (kind === 4) return address.startsWith("127.");
  if (kind !== 6) return false;
  const g = v6Groups(address);
  if (g.slice(0, 7).every((x) => x === 0)) return g[7] === 1;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff && g[6] >> 8 === 127;
}

/** True for any address a webhook must not reach (IPv4 or IPv6 literal). */
export function isBlockedAddress(address: string): boolean {
  const kind = isIP(address);
  if (kind === 4) return isBlockedV4(address);
  if (kind === 6) return isBlockedV6(address);
  return true;
}

function isBlockedV4(a: string): boolean {
  const [x, y] = a.split(".").map(Number);
  return (
    x === 0 || // "this" network
    x === 10 || // RFC 1918
    x === 127 || // loopback
    (x === 100 && y >= 64 && y <= 127) || // carrier-grade NAT
    (x === 169 && y === 254) || // link-local, cloud metadata (169.254.169.254)
    (x === 172 && y >= 16 && y <= 31) || // RFC 1918
    (x === 192 && y === 0) || // IETF protocol assignments, DS-Lite
    (x === 192 && y === 168) || // RFC 1918
    (x === 198 && (y === 18 || y === 19)) || // benchmarking
    x >= 224 // multicast, reserved, broadcast
  );
}

/** Expands an IPv6 literal into 8 groups (handles "::" and a trailing dotted IPv4). */
function v6Groups(a: string): number[] {
  let text = a.split("%")[0];
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const [p, q, r, s] = dotted[1].split(".").map(Number);
    text = text.slice(0, -dotted[1].length) + `${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => parseInt(g || "0", 16));
}

function isBlockedV6(a: string): boolean {
  const g = v6Groups(a);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (g.slice(0, 7).every((x) => x === 0)) return true; // :: and ::1
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) return isBlockedV4(v4(g[6], g[7])); // v4-mapped / compatible
  if (g[0] === 0x64 && g[1] === 0xff9b) return isBlockedV4(v4(g[6], g[7])); // NAT64
  if (g[0] === 0x2002) return isBlockedV4(v4(g[1], g[2])); // 6to4
  if ((g[0] & 0xfe00) === 0xfc00) return true; // unique local
  if ((g[0] & 0xffc0) === 0xfe80) return true; // link-local
  if ((g[0] & 0xffc0) === 0xfec0) return true; // site-local (deprecated)
  if ((g[0] & 0xff00) === 0xff00) return true; // multicast
  if (g[0] === 0x2001 && g[1] === 0xdb8) return true; // documentation
  if (g[0] === 0x100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return true; // discard-only
  return false;
}
