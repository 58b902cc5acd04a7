import type { Config } from "./schema.ts";

export const REDACTED = "[redacted]";

/** A copy of the config that is safe to print or log: passwords, tokens and URL credentials hidden. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config);
  if (copy.mqtt.password !== undefined) copy.mqtt.password = REDACTED;
  if (copy.health.token !== undefined) copy.health.token = REDACTED;
  if (copy.ingest.token !== undefined) copy.ingest.token = REDACTED;
  copy.mqtt.url = redactUrl(copy.mqtt.url);
  return copy;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === "") return url;
    u.password = REDACTED;
    return u.toString();
  } catch {
    return url;
  }
}
