/**
 * EmbeddedBroker is the zero-setup demo's MQTT broker: aedes in-process on loopback. pause()
 * closes the listener and drops every connection (an outage) while aedes keeps its sessions, so
 * a persistent subscriber gets what was published for it once resume() reopens the same port.
 */
import { createServer, type Server, type Socket } from "node:net";
import { Aedes } from "aedes";

export class EmbeddedBroker {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly aedes: Aedes,
    readonly port: number,
  ) {}

  static async start(port = 0): Promise<EmbeddedBroker> {
    const aedes = await Aedes.createBroker();
    const broker = new EmbeddedBroker(aedes, port);
    const bound = await broker.listen(port);
    return Object.assign(broker, { port: bound });
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  private listen(port: number): Promise<number> {
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      this.aedes.handle(socket);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  async pause(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async resume(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.pause();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}
