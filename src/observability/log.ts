// Structured logs through pino: one JSON object per line (time, level, msg, and fields),
// or readable lines through pino-pretty for a person at a terminal. Every line written
// while a request is being handled carries that request's id, taken from an
// AsyncLocalStorage context the HTTP wrapper (observability/http.ts) opens per request.
import { AsyncLocalStorage } from "node:async_hooks";
import process from "node:process";
import pino, { type Logger, type LoggerOptions } from "pino";
import pretty from "pino-pretty";

/** What the logs know about the request being handled. */
export interface RequestContext {
  id: string;
  /** Message of the error that decided the response (4xx/5xx), for the access log line. */
  error?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export type LogFormat = "json" | "pretty";

export interface LogSettings {
  LOG_LEVEL: string;
  /** Unset: JSON unless stdout is a terminal. */
  LOG_FORMAT?: LogFormat;
}

function build(settings: LogSettings): Logger {
  const options: LoggerOptions = {
    level: settings.LOG_LEVEL,
    // No pid/hostname on every line: the process supervisor or container runtime knows them.
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = requestContext.getStore();
      return ctx ? { requestId: ctx.id } : {};
    },
  };
  const format = settings.LOG_FORMAT ?? (process.stdout.isTTY ? "pretty" : "json");
  if (format === "json") return pino(options);
  // The prettifier as a plain stream, not a worker-thread transport: it works the same on
  // Bun and Deno, and lines are written before the process exits.
  return pino(options, pretty({ sync: true, colorize: Boolean(process.stdout.isTTY), translateTime: "SYS:HH:MM:ss.l" }));
}

/** The process's logger; a live binding, so importers see the configured one. */
export let log: Logger = build({ LOG_LEVEL: process.env.LOG_LEVEL || "info", LOG_FORMAT: "json" });

/** Applies LOG_LEVEL and LOG_FORMAT (main.ts, once the configuration is loaded). */
export function configureLogging(settings: LogSettings): void {
  log = build(settings);
}

/** Records the error behind the current request's response, for its access log line. */
export function noteRequestError(err: unknown): void {
  const ctx = requestContext.getStore();
  if (ctx) ctx.error = err instanceof Error ? err.message : String(err);
}

const SECRET_KEY = /SECRET|TOKEN|PASSWORD|PRIVATE/i;

/** The configuration as it may be logged: passwords in URLs and secret-looking keys hidden. */
export function loggableConfig(config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (SECRET_KEY.test(key)) out[key] = "[redacted]";
    else if (typeof value === "string" && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) out[key] = hidePassword(value);
    else out[key] = value;
  }
  return out;
}

function hidePassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    // A multi-host Postgres URL (postgres://u:p@h1:5432,h2:5432/db) is no WHATWG URL:
    // hide the password by hand, keep the hosts an operator wants to see.
    const hidden = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^@/?#]*@/i, "$1:***@");
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*,/i.test(value) ? hidden : "[unparsable url]";
  }
}
