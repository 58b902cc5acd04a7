/**
 * MosquittoBroker runs a real mosquitto on a free loopback port with a config written for the
 * test. stop()/start() on the same port make an outage in the middle of a test.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitForPort } from "./ports.ts";
import { which } from "./tools.ts";

export interface BrokerTls {
  ca: string;
  cert: string;
  key: string;
  /** Require and verify a client certificate (mutual TLS). */
  requireCertificate?: boolean;
}

export interface BrokerOptions {
  tls?: BrokerTls;
  /**
   * Keep sessions and queued messages across stop("SIGTERM")/start(), so a subscriber with a
   * persistent session (clean: false) misses nothing published while it was not yet reconnected.
   */
  persistent?: boolean;
  /** ACL file lines (mosquitto's acl_file: "topic read #", "topic write a/b", …). */
  acl?: string[];
  /** Extra mosquitto.conf lines. */
  extra?: string[];
}

export class MosquittoBroker {
  private proc: Subprocess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly dir: string,
    private readonly confPath: string,
  ) {}

  static async start(options: BrokerOptions = {}): Promise<MosquittoBroker> {
    const dir = mkdtempSync(join(tmpdir(), "fr-mosquitto-"));
    const port = await freePort();
    const tlsPort = options.tls ? await freePort() : undefined;
    const lines = [
      "per_listener_settings false",
      "allow_anonymous true",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
    ];
    lines.push(`listener ${port} 127.0.0.1`);
    if (options.tls && tlsPort) {
      lines.push(
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${options.tls.ca}`,
        `certfile ${options.tls.cert}`,
        `keyfile ${options.tls.key}`,
      );
      if (options.tls.requireCertificate) lines.push("require_certificate true");
    }
    if (options.persistent) {
      // mosquitto started as root drops to its own user: the state dir must be reachable and
      // writable for it, and the 0700 temp dir above is not.
      const state = join(dir, "state");
      mkdirSync(state);
      chmodSync(dir, 0o755);
      chmodSync(state, 0o777);
      lines.push("persistence true", `persistence_location ${state}/`);
    }
    if (options.acl) {
      // Readable by the mosquitto user it drops to when started as root, like the state dir above.
      const acl = join(dir, "acl");
      writeFileSync(acl, `${options.acl.join("\n")}\n`);
      chmodSync(dir, 0o755);
      chmodSync(acl, 0o644);
      lines.push(`acl_file ${acl}`);
    }
    lines.push(...(options.extra ?? []));
    const confPath = join(dir, "mosquitto.conf");
    writeFileSync(confPath, `${lines.join("\n")}\n`);
    const broker = new MosquittoBroker(port, tlsPort, dir, confPath);
    await broker.start();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get tlsUrl(): string {
    if (!this.tlsPort) throw new Error("broker started without TLS");
    return `mqtts://127.0.0.1:${this.tlsPort}`;
  }

  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const bin = which("mosquitto");
    if (!bin) throw new Error("mosquitto is not installed (apt-get install mosquitto)");
    const proc = Bun.spawn([bin, "-c", this.confPath], { stdout: "ignore", stderr: "pipe" });
    this.proc = proc;
    void (async () => {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>)
        this.output += Buffer.from(chunk).toString();
    })();
    try {
      await waitForPort(this.port, 10_000);
      if (this.tlsPort) await waitForPort(this.tlsPort, 10_000);
    } catch (error) {
      throw new Error(`mosquitto did not start: ${String(error)}\n${this.output}`);
    }
  }

  /** Stop the broker (SIGKILL by default: an outage, not a polite shutdown). */
  async stop(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill("SIGCONT"); // a paused broker would not act on SIGTERM
    proc.kill(signal);
    await proc.exited;
    this.proc = undefined;
  }

  /** Freeze the broker (SIGSTOP): connections stay open but nothing is acked, so publishes stay inflight. */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  resume(): void {
    this.proc?.kill("SIGCONT");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
