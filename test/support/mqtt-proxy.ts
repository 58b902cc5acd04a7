/**
 * MqttWireProxy sits between a client and a broker on loopback and records every packet the
 * client sends (parsed with mqtt-packet, the parser mqtt.js itself uses), with the time it passed.
 * It shows on the wire what a client did — e.g. when a PUBACK left — independent of the client's
 * own counters, and cut() drops every connection like a network failure.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import mqttPacket from "mqtt-packet";

export interface SeenPacket {
  cmd: string;
  messageId?: number;
  at: number;
}

export class MqttWireProxy {
  readonly fromClient: SeenPacket[] = [];
  private readonly sockets = new Set<Socket>();
  private refusing = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(brokerPort: number): Promise<MqttWireProxy> {
    let proxy: MqttWireProxy | undefined;
    const server = createServer((client) => {
      if (!proxy || proxy.refusing) {
        client.destroy();
        return;
      }
      const p = proxy;
      const upstream = connect({ port: brokerPort, host: "127.0.0.1" });
      p.sockets.add(client);
      p.sockets.add(upstream);
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      parser.on("packet", (packet: { cmd: string; messageId?: number }) =>
        p.fromClient.push({ cmd: packet.cmd, messageId: packet.messageId, at: Date.now() }),
      );
      client.on("data", (chunk: Buffer) => {
        parser.parse(chunk);
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => client.write(chunk));
      const close = () => {
        client.destroy();
        upstream.destroy();
        p.sockets.delete(client);
        p.sockets.delete(upstream);
      };
      client.on("close", close);
      upstream.on("close", close);
      client.on("error", close);
      upstream.on("error", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (typeof address !== "object" || !address) throw new Error("proxy has no port");
    proxy = new MqttWireProxy(server, address.port);
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  pubacks(): SeenPacket[] {
    return this.fromClient.filter((p) => p.cmd === "puback");
  }

  /** Drop every connection; with refuse, also refuse new ones until accept(). */
  cut(refuse = false): void {
    this.refusing = refuse;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  accept(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut(true);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
