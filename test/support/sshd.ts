/**
 * A real OpenSSH server for tests: its own host key, one authorized client key, a free loopback
 * port, run in the foreground (`sshd -D -e`) as the current user (root in CI, so logins as root
 * work with PermitRootLogin prohibit-password). Everything lives in one temp dir removed by stop().
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort, waitForPort } from "./ports.ts";
import type { Tool } from "./tools.ts";

export const SSHD: Tool = { cmd: "/usr/sbin/sshd", pkg: "openssh-server" };
export const SSH: Tool = { cmd: "ssh", pkg: "openssh-client" };
export const SCP: Tool = { cmd: "scp", pkg: "openssh-client" };
export const SSH_KEYGEN: Tool = { cmd: "ssh-keygen", pkg: "openssh-client" };

function keygen(file: string): void {
  const r = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", file], {
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`ssh-keygen -f ${file} failed: ${r.stderr.toString()}`);
}

export class Sshd {
  private log = "";

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** Private key the server accepts (pass to ssh -i / push.sh --identity). */
    readonly clientKey: string,
    private readonly proc: Subprocess<"ignore", "ignore", "pipe">,
  ) {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) this.log += decoder.decode(chunk, { stream: true });
    })();
  }

  static async start(): Promise<Sshd> {
    // sshd refuses to start without its privilege separation dir, which Debian's unit creates
    // (RuntimeDirectory=sshd); without systemd the harness makes it, the same empty 0755 dir.
    if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
    const dir = mkdtempSync(join(tmpdir(), "fr-sshd-"));
    const hostKey = join(dir, "host_ed25519");
    const clientKey = join(dir, "client_ed25519");
    keygen(hostKey);
    keygen(clientKey);
    const port = await freePort();
    const config = join(dir, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${clientKey}.pub`,
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const proc = Bun.spawn([SSHD.cmd, "-D", "-e", "-f", config], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const server = new Sshd(dir, port, clientKey, proc);
    try {
      await waitForPort(port);
    } catch (e) {
      proc.kill();
      throw new Error(`sshd did not listen on ${port}: ${(e as Error).message}\n${server.log}`);
    }
    return server;
  }

  /** ssh options that trust this server without touching ~/.ssh. */
  get clientOptions(): string[] {
    return ["-o", "StrictHostKeyChecking=no", "-o", `UserKnownHostsFile=${join(this.dir, "known_hosts")}`];
  }

  /** What sshd wrote to stderr (errors only), for failure messages. */
  get output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    this.proc.kill();
    await this.proc.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
