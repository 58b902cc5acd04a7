/**
 * Checks across keys and against the machine that `run` would otherwise fail on later, so that
 * `check-config` finds them first (issue #12): a non-loopback listener without its token, ingest
 * and health on the same port, TLS files that cannot be read or are not PEM. Each problem names
 * the key. The listen ports' availability is checked by check-config itself (it binds them).
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConfigProblem } from "./load.ts";
import { type Config, isLoopback, parseListen } from "./schema.ts";

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function crossCheck(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ingest = parseListen(config.ingest.listen);
  const health = parseListen(config.health.listen);
  if (ingest && !isLoopback(ingest.host) && !config.ingest.token) {
    problems.push({
      path: "ingest.token",
      message: `required because ingest.listen (${config.ingest.listen}) is not loopback: set FIELDRELAY_INGEST_TOKEN (16+ characters) or listen on 127.0.0.1`,
    });
  }
  if (health && !isLoopback(health.host) && !config.health.token) {
    problems.push({
      path: "health.token",
      message: `required because health.listen (${config.health.listen}) is not loopback: set FIELDRELAY_HEALTH_TOKEN (16+ characters) or listen on 127.0.0.1`,
    });
  }
  if (ingest && health && ingest.port === health.port) {
    problems.push({
      path: "health.listen",
      message: `uses port ${health.port}, like ingest.listen: give each its own port (defaults 9107 and 9108)`,
    });
  }
  const tls = config.mqtt.tls;
  for (const key of ["ca", "cert", "key"] as const) {
    const file = tls[key];
    if (file === undefined) continue;
    const problem = pemProblem(file, key === "key" ? "key" : "certificate");
    if (problem) problems.push({ path: `mqtt.tls.${key}`, message: problem });
  }
  return problems;
}

/** Why a PEM file cannot be used, or undefined. */
export function pemProblem(file: string, kind: "certificate" | "key"): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `cannot read ${file} (${code ?? String(error)}): check the path and that the fieldrelay user may read it`;
  }
  try {
    if (kind === "key") {
      createPrivateKey(text);
      return undefined;
    }
    const blocks = text.match(PEM_CERT) ?? [];
    if (blocks.length === 0) return `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
    for (const block of blocks) new X509Certificate(block);
    return undefined;
  } catch (error) {
    return `${file} is not a valid PEM ${kind}: ${(error as Error).message}`;
  }
}
