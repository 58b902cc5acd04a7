/**
 * MqttFaultProxy sits between a client and a real mosquitto and rewrites the broker's PUBACKs:
 * what mosquitto cannot be configured to say (0x97 quota exceeded, 0x89 server busy, a refusal of
 * one particular message) is said by changing the reason code of its real answer. Everything else
 * passes through byte for byte. MQTT 5 only (3.1.1 PUBACKs carry no reason code).
 *
 * `refuse(code, count)` turns the next `count` PUBACKs (Infinity: all, until `accept()`) into
 * refusals with that code (the status topic's PUBACKs excepted); the publish itself still reached mosquitto (as a broker that refuses
 * after taking it would), which a test of "nothing refused is published" must keep in mind.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { freePort } from "./ports.ts";

const PUBACK = 0x40;

export class MqttFaultProxy {
  private code = 0;
  private left = 0;
  /** PUBACKs rewritten into refusals so far. */
  refused = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** CONNECTs refused as a 3.1.1-only broker refuses MQTT 5 (CONNACK return code 1). */
  refusedV5Connects = 0;
  private only311 = false;

  /** `only311`: act as a broker that speaks MQTT 3.1.1 only (mosquitto cannot be told to). */
  static async start(brokerPort: number, options: { only311?: boolean } = {}): Promise<MqttFaultProxy> {
    const port = await freePort();
    let proxy: MqttFaultProxy | undefined;
    const server = createServer((client) => proxy?.accepted(client, brokerPort));
    proxy = new MqttFaultProxy(server, port);
    proxy.only311 = options.only311 ?? false;
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  refuse(code: number, count = Number.POSITIVE_INFINITY): void {
    this.code = code;
    this.left = count;
  }

  accept(): void {
    this.left = 0;
  }

  /** Read the CONNECT first when only 3.1.1 is spoken: level 5 is answered "unacceptable protocol version". */
  private accepted(client: Socket, brokerPort: number): void {
    if (!this.only311) {
      this.pipe(client, brokerPort, Buffer.alloc(0));
      return;
    }
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const frame = nextFrame(head);
      if (!frame) return;
      client.off("data", onData);
      // CONNECT variable header: protocol name ("MQTT", length-prefixed), then the level byte.
      const body = frame.whole.subarray(frame.bodyAt);
      const level = body[2 + body.readUInt16BE(0)];
      if (level === 5) {
        this.refusedV5Connects++;
        client.end(Buffer.from([0x20, 2, 0, 1]));
        return;
      }
      this.pipe(client, brokerPort, head);
    };
    client.on("data", onData);
    client.on("error", () => client.destroy());
  }

  private pipe(client: Socket, brokerPort: number, first: Buffer): void {
    const broker = tcpConnect(brokerPort, "127.0.0.1");
    if (first.length > 0) broker.write(first);
    this.sockets.add(client).add(broker);
    const close = () => {
      client.destroy();
      broker.destroy();
      this.sockets.delete(client);
      this.sockets.delete(broker);
    };
    client.on("error", close).on("close", close);
    broker.on("error", close).on("close", close);
    // Client → broker passes unchanged; PUBLISH packet ids are noted with their topic.
    const topics = new Map<number, string>();
    let sent = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      broker.write(chunk);
      sent = Buffer.concat([sent, chunk]);
      for (;;) {
        const frame = nextFrame(sent);
        if (!frame) break;
        sent = sent.subarray(frame.whole.length);
        const first = frame.whole[0]!;
        if (first >> 4 !== 3 || ((first >> 1) & 3) === 0) continue;
        const body = frame.whole.subarray(frame.bodyAt);
        const topicLength = body.readUInt16BE(0);
        topics.set(body.readUInt16BE(2 + topicLength), body.subarray(2, 2 + topicLength).toString());
      }
    });
    let pending = Buffer.alloc(0);
    broker.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const frame = nextFrame(pending);
        if (!frame) break;
        pending = pending.subarray(frame.whole.length);
        client.write(this.rewrite(frame.whole, topics));
      }
    });
  }

  private rewrite(frame: Buffer, topics: Map<number, string>): Buffer {
    if (frame[0] !== PUBACK || this.left <= 0) return frame;
    const id = frame.subarray(2, 4);
    // Only the readings' messages: the status topic's birth message is let through.
    if (topics.get(id.readUInt16BE(0))?.endsWith("/status") !== false) return frame;
    if (frame[1]! >= 3 && frame[4]! >= 0x80) return frame; // mosquitto refused it itself
    this.left--;
    this.refused++;
    // Fixed header, remaining length 3: packet id and the reason code (no properties).
    return Buffer.from([PUBACK, 3, id[0]!, id[1]!, this.code]);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One whole MQTT packet at the start of buf and where its body starts, or undefined. */
function nextFrame(buf: Buffer): { whole: Buffer; bodyAt: number } | undefined {
  let length = 0;
  let multiplier = 1;
  let at = 1;
  for (;;) {
    if (at >= buf.length) return undefined;
    const byte = buf[at++]!;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) break;
    multiplier *= 128;
  }
  if (buf.length < at + length) return undefined;
  return { whole: buf.subarray(0, at + length), bodyAt: at };
}
