// What the logs must never show (issue 25, item 5): secrets among the settings, and
// passwords inside URLs. One rule, applied by pino to every line (log.ts), and by main.ts to
// what it prints when start-up fails.
//
// The rule:
//  1. A setting whose name contains KEY, SECRET, TOKEN, PASSWORD or PRIVATE holds a secret
//     and is logged as "[redacted]" (WEBHOOK_SIGNING_KEY, AUTH_JWT_SECRET, ...), except
//       - names ending in _FILE: a path; the file's contents are the secret, and the path is
//         what an operator needs to see (AUTH_TOKENS_FILE);
//       - numbers: a lifetime or a count, never a secret (CALLBACK_TOKEN_TTL_S);
//       - the switches "true" and "false" (WEBHOOK_ALLOW_PRIVATE_TARGETS).
//  2. Every other string, setting or log text alike, has the secrets inside URLs and
//     connection strings masked with "***": the password of a URL's userinfo
//     (postgres://user:***@host) and the value of every password-like parameter
//     (?password=***, &sslpassword=***, token=***, api_key=***). That covers DATABASE_URL
//     and any later URL-valued setting (lists of URLs included) without naming them.

export const REDACTED = "[redacted]";
const MASK = "***";

const SECRET_SETTING = /KEY|SECRET|TOKEN|PASSWORD|PRIVATE/i;
/** Parameter names whose value is a credential (libpq's password and sslpassword among them). */
const SECRET_PARAM = /pass|pwd|secret|token|(^|[_-])(api)?key$|^apikey$|^credential/i;

/** scheme://user:password@ — the password runs to the last @ before the path. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):[^\s/?#]*@/gi;
/** name=value after ?, &, ;, whitespace or the start: query parameters and libpq key=value pairs. */
const PARAM = /(^|[?&;\s])([\w.-]+)=([^&\s;#'"]*)/g;

/** Masks URL passwords and password-like parameters anywhere in a text. */
export function hideSecretsIn(text: string): string {
  if (!text.includes("=") && !text.includes("@")) return text;
  return text
    .replace(USERINFO, (_, head: string) => `${head}:${MASK}@`)
    .replace(PARAM, (all, lead: string, name: string, value: string) => (value && SECRET_PARAM.test(name) ? `${lead}${name}=${MASK}` : all));
}

/** Whether a setting's value is a secret as a whole (rule 1). */
export function isSecretSetting(name: string, value: unknown): boolean {
  return typeof value === "string" && SECRET_SETTING.test(name) && !/_FILE$/i.test(name) && value !== "true" && value !== "false";
}

/** One setting as it may be logged. */
export function redactSetting(name: string, value: unknown): unknown {
  if (isSecretSetting(name, value)) return REDACTED;
  return typeof value === "string" ? hideSecretsIn(value) : value;
}

/** Every string in a value (an error's fields, say) with the secrets inside masked. */
export function hideSecretsDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return hideSecretsIn(value);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => hideSecretsDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = hideSecretsDeep(v, depth + 1);
  return out;
}
