// The whole configuration, composed at the top from each part's settings, read from the
// environment and validated with TypeBox, so a bad value stops start-up with a clear message
// instead of surfacing later.
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { AuthConfigSchema } from "./auth/config.ts";
import { CoreConfigSchema } from "./config.ts";

export const ConfigSchema = Type.Object({
  ...CoreConfigSchema.properties,
  ...AuthConfigSchema.properties,
});

export type Config = Static<typeof ConfigSchema>;

export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const value = env[key];
    if (value === undefined || value === "") continue;
    raw[key] = (schema as { type?: string }).type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  const withDefaults = Value.Default(ConfigSchema, raw);
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    const detail = errors.map((e) => `${e.path.slice(1)}: ${e.message}`).join("; ");
    throw new Error(`invalid configuration: ${detail}`);
  }
  return withDefaults as Config;
}
