/**
 * CountingProxy is a loopback TCP proxy that counts the bytes it forwards in each direction: what a
 * metered link would bill (TCP payload: MQTT framing included, TCP/IP headers not).
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export class CountingProxy {
  /** Client → broker bytes. */
  up = 0;
  /** Broker → client bytes. */
  down = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<CountingProxy> {
    let proxy: CountingProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect({ port: targetPort, host: targetHost });
      proxy!.sockets.add(client).add(upstream);
      client.on("data", (chunk) => {
        proxy!.up += chunk.length;
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => {
        proxy!.down += chunk.length;
        client.write(chunk);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("close", close).on("error", close);
      upstream.on("close", close).on("error", close);
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        if (typeof address === "object" && address) resolve(address.port);
        else reject(new Error("proxy has no port"));
      });
    });
    proxy = new CountingProxy(server, port);
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get total(): number {
    return this.up + this.down;
  }

  reset(): void {
    this.up = this.down = 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
