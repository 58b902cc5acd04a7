export {
  COMMAND_NAMES,
  type CommandActions,
  type CommandContext,
  type CommandId,
  type CommandReply,
  type ErrorCode,
  errorReply,
  handleCommand,
} from "./handle.ts";
export {
  type CommandPacket,
  type Commands,
  type CommandsOptions,
  type CommandTransport,
  startCommands,
} from "./transport.ts";
