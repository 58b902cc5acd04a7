/**
 * PostgresCluster runs a private PostgreSQL (Debian's postgresql 15 binaries) for a test: initdb
 * into a temp dir, a free loopback port, password authentication over TCP, the socket in the
 * temp dir. PostgreSQL refuses to run as root, so as root the cluster belongs to the unprivileged
 * user "nobody" and every server command runs through `setpriv` as that user. stop()/start() on the
 * same port and data dir make a database outage in the middle of a test; close() removes it all.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitForPort } from "./ports.ts";
import { type Tool, which } from "./tools.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
export const POSTGRES: Tool = { cmd: `${PG_BIN}/postgres`, pkg: "postgresql" };

export const PG_USER = "fieldrelay";
export const PG_PASSWORD = "test-password-1";
const RUN_AS = "nobody";
const RUN_AS_GROUP = "nogroup";

export interface PostgresOptions {
  /** Extra postgresql.conf lines. */
  extra?: string[];
  /**
   * Serve TLS only (plain TCP is rejected) with this certificate and key (PEM files). With
   * `clientCa`, every client must also present a certificate signed by it (clientcert=verify-ca: the chain, not the name).
   */
  tls?: { cert: string; key: string; clientCa?: string };
}

export class PostgresCluster {
  private proc: Subprocess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  private get dataDir(): string {
    return join(this.dir, "data");
  }

  /** As root: the uid/gid everything runs as; otherwise undefined (run as ourselves). */
  private static owner(): { uid: number; gid: number } | undefined {
    if (process.getuid?.() !== 0) return undefined;
    const id = (flag: string) => Number(Bun.spawnSync(["id", flag, RUN_AS]).stdout.toString().trim());
    return { uid: id("-u"), gid: id("-g") };
  }

  private static asOwner(argv: string[]): string[] {
    // setpriv execs (no fork), so the spawned process IS postgres and signals reach it directly.
    return process.getuid?.() === 0
      ? ["setpriv", `--reuid=${RUN_AS}`, `--regid=${RUN_AS_GROUP}`, "--clear-groups", "--", ...argv]
      : argv;
  }

  static async start(options: PostgresOptions = {}): Promise<PostgresCluster> {
    if (!which(POSTGRES.cmd)) throw new Error(`PostgreSQL is not installed (apt-get install postgresql)`);
    const dir = mkdtempSync(join(tmpdir(), "fr-postgres-"));
    const owner = PostgresCluster.owner();
    if (owner) {
      chmodSync(dir, 0o755);
      chownSync(dir, owner.uid, owner.gid);
    }
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, `${PG_PASSWORD}\n`);
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    const init = Bun.spawnSync(
      PostgresCluster.asOwner([
        `${PG_BIN}/initdb`,
        "-D",
        join(dir, "data"),
        "-U",
        PG_USER,
        `--pwfile=${pwfile}`,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
      ]),
      { stdout: "pipe", stderr: "pipe" },
    );
    if (init.exitCode !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed: ${init.stderr.toString()}${init.stdout.toString()}`);
    }
    const port = await freePort();
    const tlsConf = options.tls ? PostgresCluster.serveTls(join(dir, "data"), options.tls, owner) : [];
    const conf = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      "max_connections = 50",
      "shared_buffers = 64MB",
      "logging_collector = off",
      "log_min_messages = warning",
      ...tlsConf,
      ...(options.extra ?? []),
    ];
    writeFileSync(join(dir, "data", "postgresql.auto.conf"), `${conf.join("\n")}\n`);
    if (owner) chownSync(join(dir, "data", "postgresql.auto.conf"), owner.uid, owner.gid);
    const cluster = new PostgresCluster(port, dir);
    await cluster.start();
    await cluster.createDatabase("fieldrelay");
    return cluster;
  }

  /**
   * Copies the TLS files into the data dir (the server refuses a key readable by others or owned by
   * someone else), rewrites pg_hba.conf to refuse plain TCP, and returns the postgresql.conf lines.
   */
  private static serveTls(
    data: string,
    tls: NonNullable<PostgresOptions["tls"]>,
    owner: { uid: number; gid: number } | undefined,
  ): string[] {
    const files: Array<[string, string]> = [
      [tls.cert, "server.crt"],
      [tls.key, "server.key"],
    ];
    if (tls.clientCa) files.push([tls.clientCa, "client-ca.crt"]);
    for (const [from, name] of files) {
      copyFileSync(from, join(data, name));
      chmodSync(join(data, name), 0o600);
      if (owner) chownSync(join(data, name), owner.uid, owner.gid);
    }
    const hba = join(data, "pg_hba.conf");
    const local = readFileSync(hba, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("local"));
    const auth = `scram-sha-256${tls.clientCa ? " clientcert=verify-ca" : ""}`;
    writeFileSync(
      hba,
      `${[...local, "hostnossl all all 0.0.0.0/0 reject", `hostssl all all 127.0.0.1/32 ${auth}`].join("\n")}\n`,
    );
    return [
      "ssl = on",
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      ...(tls.clientCa ? ["ssl_ca_file = 'client-ca.crt'"] : []),
    ];
  }

  /** postgres://fieldrelay@127.0.0.1:PORT/DB — no password: it comes from the environment. */
  url(database = "fieldrelay"): string {
    return `postgres://${PG_USER}@127.0.0.1:${this.port}/${database}`;
  }

  get password(): string {
    return PG_PASSWORD;
  }

  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const proc = Bun.spawn(PostgresCluster.asOwner([POSTGRES.cmd, "-D", this.dataDir]), {
      stdout: "ignore",
      stderr: "pipe",
    });
    this.proc = proc;
    void (async () => {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>)
        this.output += Buffer.from(chunk).toString();
    })();
    try {
      await waitForPort(this.port, 20_000);
      // The port opens before recovery ends; ask until the server accepts queries.
      for (let i = 0; ; i++) {
        if (this.psql("SELECT 1", "postgres").exitCode === 0) break;
        if (i > 200) throw new Error("server accepts connections but not queries");
        await Bun.sleep(50);
      }
    } catch (error) {
      throw new Error(`postgres did not start: ${String(error)}\n${this.output}`);
    }
  }

  private psql(sql: string, database = "fieldrelay") {
    return Bun.spawnSync(
      PostgresCluster.asOwner([
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        this.dir,
        "-p",
        String(this.port),
        "-U",
        PG_USER,
        "-d",
        database,
        "-At",
        "-c",
        sql,
      ]),
      { stdout: "pipe", stderr: "pipe" },
    );
  }

  /** Run SQL through psql on the private socket (trust auth): for setup and assertions. */
  query(sql: string, database = "fieldrelay"): string {
    const r = this.psql(sql, database);
    if (r.exitCode !== 0) throw new Error(`psql failed: ${r.stderr.toString()}`);
    return r.stdout.toString().trim();
  }

  async createDatabase(name: string): Promise<void> {
    this.query(`CREATE DATABASE ${name}`, "postgres");
  }

  /** Stop the server: "immediate" is a crash (SIGQUIT), "fast" a clean shutdown (SIGINT). */
  async stop(mode: "immediate" | "fast" = "fast"): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill(mode === "immediate" ? "SIGQUIT" : "SIGINT");
    await proc.exited;
    this.proc = undefined;
  }

  async close(): Promise<void> {
    await this.stop("fast");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
