/**
 * Who may read /health and /metrics. On loopback nobody needs a token (only local processes can
 * connect); on any other address health.token is required, because /metrics and /health reveal
 * the device's state to the network. The token compare lives in src/http (shared with ingest).
 */
import { isLoopback } from "../config/index.ts";
import { FieldrelayError } from "../errors/index.ts";

/** HealthConfigError is a health listener that would be unsafe to open. */
export class HealthConfigError extends FieldrelayError {}

/** Throws when a non-loopback listener has no token. */
export function assertListenAllowed(host: string, token: string | undefined): void {
  if (isLoopback(host) || token) return;
  throw new HealthConfigError(
    `health.listen is ${host}, which is not loopback, and health.token is not set`,
    {
      hint: 'set FIELDRELAY_HEALTH_TOKEN (16+ characters) or listen on loopback, e.g. "127.0.0.1:9108"',
      context: { key: "health.listen", host },
    },
  );
}

export { isAuthorized } from "../http/index.ts";
