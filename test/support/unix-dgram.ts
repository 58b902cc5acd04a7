/**
 * A unix datagram socket bound in the test, standing in for systemd's notify socket. Node and Bun
 * cannot bind AF_UNIX SOCK_DGRAM, so this binds one through bun:ffi on libc (test support only;
 * the runtime's single libc binding is src/hal/libc and stays free of bind/recv). Path and
 * abstract ("@name") addresses; receive() polls with MSG_DONTWAIT, so nothing blocks the loop.
 */
import { dlopen, FFIType } from "bun:ffi";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeSockaddrUn } from "../../src/system/index.ts";

const { i32, u32, u64, i64, ptr } = FFIType;
const lib = dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  recv: { args: [i32, ptr, u64, i32], returns: i64 },
  close: { args: [i32], returns: i32 },
}).symbols;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;

export class UnixDgramServer {
  private closed = false;
  private constructor(
    readonly address: string,
    private readonly fd: number,
    private readonly dir: string | undefined,
  ) {}

  /** Bind a filesystem socket in a fresh temp dir. */
  static path(): UnixDgramServer {
    const dir = mkdtempSync(join(tmpdir(), "fr-notify-"));
    return UnixDgramServer.bind(join(dir, "notify.sock"), dir);
  }

  /** Bind an abstract socket ("@fieldrelay-test-<random>"). */
  static abstract(): UnixDgramServer {
    return UnixDgramServer.bind(`@fieldrelay-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
  }

  private static bind(address: string, dir?: string): UnixDgramServer {
    const fd = lib.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error("socket(AF_UNIX, SOCK_DGRAM) failed");
    const addr = encodeSockaddrUn(address);
    if (lib.bind(fd, addr, addr.byteLength) !== 0) {
      lib.close(fd);
      throw new Error(`bind(${address}) failed`);
    }
    return new UnixDgramServer(address, fd, dir);
  }

  /** Every datagram waiting now, as text (empty when none). */
  drain(): string[] {
    const out: string[] = [];
    const buf = new Uint8Array(new ArrayBuffer(4096));
    for (;;) {
      const n = Number(lib.recv(this.fd, buf, buf.byteLength, MSG_DONTWAIT));
      if (n < 0) return out;
      out.push(Buffer.from(buf.subarray(0, n)).toString("utf8"));
    }
  }

  /** Wait (polling) until at least `count` datagrams arrived in total. */
  async receive(count = 1, timeoutMs = 2000): Promise<string[]> {
    const got: string[] = [];
    const deadline = Date.now() + timeoutMs;
    while (got.length < count) {
      got.push(...this.drain());
      if (got.length >= count) break;
      if (Date.now() > deadline)
        throw new Error(`expected ${count} datagram(s) on ${this.address}, got ${got.length}`);
      await Bun.sleep(5);
    }
    return got;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    lib.close(this.fd);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
