/**
 * CountingProxy is a loopback TCP proxy that counts the bytes it forwards in each direction: what a
 * metered link would bill (TCP payload: MQTT framing included, TCP/IP headers not). With
 * `delayMs` it holds every chunk that long each way, so the link has a round trip of 2 × delayMs.
 * With `bytesPerS` each direction is also a serial link of that rate: a chunk leaves when the
 * previous one has, plus its length / rate (an LTE or satellite uplink's bandwidth). It buffers
 * without limit, as a bufferbloated modem does, so throughput is the rate and never a window.
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

  static async start(
    targetPort: number,
    options: { host?: string; delayMs?: number; bytesPerS?: number } = {},
  ): Promise<CountingProxy> {
    const targetHost = options.host ?? "127.0.0.1";
    const delayMs = options.delayMs ?? 0;
    const bytesPerS = options.bytesPerS ?? 0;
    // Per direction of each connection: when the link finishes sending what it already holds.
    const link = () => {
      let freeAtMs = 0;
      return (to: Socket, chunk: Buffer | string) => {
        if (delayMs === 0 && bytesPerS === 0) {
          to.write(chunk);
          return;
        }
        const now = performance.now();
        if (bytesPerS > 0) freeAtMs = Math.max(now, freeAtMs) + (chunk.length * 1000) / bytesPerS;
        const dueMs = (bytesPerS > 0 ? freeAtMs : now) + delayMs;
        // Due times never decrease, so timers fire (and chunks arrive) in the order they were sent.
        setTimeout(() => to.destroyed || to.write(chunk), Math.max(0, dueMs - now));
      };
    };
    let proxy: CountingProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect({ port: targetPort, host: targetHost });
      proxy!.sockets.add(client).add(upstream);
      const sendUp = link();
      const sendDown = link();
      client.on("data", (chunk) => {
        proxy!.up += chunk.length;
        sendUp(upstream, chunk);
      });
      upstream.on("data", (chunk) => {
        proxy!.down += chunk.length;
        sendDown(client, chunk);
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
