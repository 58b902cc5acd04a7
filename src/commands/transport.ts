/**
 * Commands over MQTT. Subscribes `<prefix>/<device>/cmd/+` through the publisher's transport and
 * answers each request on `<prefix>/<device>/cmd/<name>/reply` (QoS 1, not retained) — or, with
 * MQTT 5, on the request's Response Topic with its Correlation Data. The JSON "id" of the request
 * is echoed either way. Requests run one at a time in arrival order; more than MAX_WAITING
 * waiting are answered "busy" at once, so a flood cannot grow memory without bound.
 *
 * The transport re-subscribes after a reconnect (the publisher owns the connection); this module
 * only subscribes once.
 */
import type { Logger } from "../log/index.ts";
import type { QoS } from "../queue/types.ts";
import { type CommandActions, type CommandReply, errorReply, handleCommand } from "./handle.ts";

export interface CommandPacket {
  /** Set on a retained message the broker replays at subscribe time: never executed (#12). */
  retain?: boolean;
  properties?: { responseTopic?: string; correlationData?: Buffer } | undefined;
}

/** The slice of the publisher the commands use. */
export interface CommandTransport {
  subscribe(
    filter: string,
    qos: QoS,
    handler: (topic: string, payload: Buffer, packet: CommandPacket) => void,
  ): unknown;
  send(
    topic: string,
    payload: string | Buffer,
    options: { qos: QoS; retain?: boolean; properties?: { correlationData?: Buffer } },
  ): void | Promise<void>;
}

export interface CommandsOptions {
  transport: CommandTransport;
  prefix: string;
  deviceId: string;
  maxPayloadBytes: number;
  ctx: CommandActions;
  log: Logger;
}

export interface Commands {
  /** The subscribed filter. */
  filter: string;
  /** Ignore further requests (the transport keeps the subscription until it closes). */
  stop(): void;
}

const MAX_WAITING = 16;

export async function startCommands(options: CommandsOptions): Promise<Commands> {
  const { transport, prefix, deviceId, maxPayloadBytes, log } = options;
  const base = `${prefix}/${deviceId}/cmd/`;
  const filter = `${base}+`;
  const ctx = { ...options.ctx, maxPayloadBytes, log };
  let stopped = false;
  let waiting = 0;
  let chain: Promise<void> = Promise.resolve();

  const reply = async (name: string, packet: CommandPacket, body: CommandReply) => {
    const props = packet.properties;
    const topic =
      props?.responseTopic && !/[+#]/.test(props.responseTopic)
        ? props.responseTopic
        : `${base}${name}/reply`;
    try {
      await transport.send(topic, JSON.stringify(body), {
        qos: 1,
        retain: false,
        ...(props?.correlationData ? { properties: { correlationData: props.correlationData } } : {}),
      });
    } catch (error) {
      log.warn({ err: error, command: name, topic }, "could not send command reply");
    }
  };

  await transport.subscribe(filter, 1, (topic, payload, packet) => {
    if (stopped || !topic.startsWith(base)) return;
    const name = topic.slice(base.length);
    if (name === "" || name.includes("/")) return;
    // A retained request would run again on every reconnect: commands are one-shot, so ignore it.
    if (packet.retain) {
      log.warn(
        { command: name, topic, hint: `clear it: publish an empty retained message to ${topic}` },
        "retained command ignored",
      );
      return;
    }
    if (waiting >= MAX_WAITING) {
      log.warn({ command: name, waiting }, "command refused: too many waiting");
      void reply(name, packet, errorReply(name, "busy", `${waiting} commands are waiting; try again later`));
      return;
    }
    waiting++;
    chain = chain.then(async () => {
      try {
        await reply(name, packet, await handleCommand(name, payload, ctx));
      } finally {
        waiting--;
      }
    });
  });
  log.info({ filter }, "listening for commands");
  return {
    filter,
    stop() {
      stopped = true;
    },
  };
}
