/**
 * Remote commands: a request on `<prefix>/<device>/cmd/<name>` with an optional JSON object
 * payload, one reply per request. handleCommand is the dispatcher; it never throws — every
 * failure (unknown command, malformed JSON, oversized payload, a failing action) becomes an error
 * reply and a log line, because a remote peer must not be able to crash the capture process.
 *
 *   request  {"id": "abc", ...arguments}          (empty payload = no arguments)
 *   reply    {"id": "abc", "command": "ping", "ok": true, "result": {...}}
 *            {"id": "abc", "command": "sample", "ok": false, "error": {"code": "...", "message": "..."}}
 *
 * Commands: ping; status (the /health body); sample {"sensor": name} (read one sensor now);
 * flush (commit the write-behind buffer now).
 */
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";

/** CommandActions is what the runtime lends the commands. */
export interface CommandActions {
  /** The /health body, evaluated now. */
  health(): unknown;
  /** Read one sensor now and return what was captured; rejects for an unknown sensor. */
  sample(sensor: string): Promise<unknown>;
  /** Commit the write-behind buffer now. */
  flush(): Promise<unknown>;
}

export interface CommandContext extends CommandActions {
  maxPayloadBytes: number;
  log: Logger;
}

export type CommandId = string | number;

export type ErrorCode =
  | "unknown_command"
  | "malformed_json"
  | "payload_too_large"
  | "bad_request"
  | "failed"
  | "busy";

export type CommandReply =
  | { id?: CommandId; command: string; ok: true; result: unknown }
  | { id?: CommandId; command: string; ok: false; error: { code: ErrorCode; message: string } };

type Args = Record<string, unknown>;
type Handler = (args: Args, ctx: CommandContext) => Promise<unknown>;

const COMMANDS: Record<string, Handler> = {
  ping: async () => ({ pong: true }),
  status: async (_, ctx) => ctx.health(),
  sample: async (args, ctx) => {
    if (typeof args.sensor !== "string" || args.sensor === "")
      throw new BadRequest('sample needs {"sensor": "<name>"}, the name of a configured [[sensor]]');
    return ctx.sample(args.sensor);
  },
  flush: async (_, ctx) => (await ctx.flush()) ?? { flushed: true },
};

export const COMMAND_NAMES = Object.keys(COMMANDS);

class BadRequest extends Error {}

export function errorReply(command: string, code: ErrorCode, message: string, id?: CommandId): CommandReply {
  return { ...(id === undefined ? {} : { id }), command, ok: false, error: { code, message } };
}

/** Parse a request payload: empty = {}, otherwise a JSON object. */
function parseArgs(payload: Buffer): Args | string {
  const text = payload.toString("utf8").trim();
  if (text === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `payload is not JSON: ${(error as Error).message}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "payload must be a JSON object";
  return value as Args;
}

export async function handleCommand(
  name: string,
  payload: Buffer,
  ctx: CommandContext,
): Promise<CommandReply> {
  const fail = (code: ErrorCode, message: string, id?: CommandId) => {
    ctx.log.warn(
      { command: name, code, bytes: payload.byteLength, ...(id === undefined ? {} : { id }) },
      `command refused: ${message}`,
    );
    return errorReply(name, code, message, id);
  };
  if (payload.byteLength > ctx.maxPayloadBytes)
    return fail(
      "payload_too_large",
      `payload is ${payload.byteLength} bytes; commands.max_payload_bytes is ${ctx.maxPayloadBytes}`,
    );
  const args = parseArgs(payload);
  if (typeof args === "string") return fail("malformed_json", args);
  const id = typeof args.id === "string" || typeof args.id === "number" ? args.id : undefined;
  const handler = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!handler)
    return fail("unknown_command", `unknown command "${name}"; known: ${COMMAND_NAMES.join(", ")}`, id);
  try {
    const result = await handler(args, ctx);
    ctx.log.info({ command: name, ...(id === undefined ? {} : { id }) }, "command handled");
    return { ...(id === undefined ? {} : { id }), command: name, ok: true, result };
  } catch (error) {
    if (error instanceof BadRequest) return fail("bad_request", error.message, id);
    return fail("failed", describeError(error), id);
  }
}
