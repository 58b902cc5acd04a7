/**
 * The one binding of libc.so.6 through bun:ffi: the syscalls fieldrelay needs for I2C, GPIO,
 * RTC, the clock model and systemd. Each wrapper throws SyscallError (errno name, syscall, path)
 * instead of returning -1. Nothing else in the codebase calls dlopen.
 *
 * Pointers: a small Buffer/Uint8Array may move when its .buffer is first touched, so any buffer
 * whose address is stored inside another struct must be allocated as
 * `new Uint8Array(new ArrayBuffer(n))` and kept referenced until the call returns.
 */
import { dlopen, FFIType, read as ffiRead, ptr } from "bun:ffi";
import { FieldrelayError } from "../../errors/index.ts";
import { errnoDescription, errnoName } from "./errno.ts";

export { Errno, type ErrnoName, errnoDescription, errnoName } from "./errno.ts";

const { i32, u32, u64, i64, ptr: P } = FFIType;

const symbols = {
  open: { args: [P, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64 },
  write: { args: [i32, P, u64], returns: i64 },
  ioctl: { args: [i32, u64, P], returns: i32 },
  poll: { args: [P, u64, i32], returns: i32 },
  pipe2: { args: [P, i32], returns: i32 },
  __errno_location: { args: [], returns: P },
  clock_gettime: { args: [i32, P], returns: i32 },
  adjtimex: { args: [P], returns: i32 },
  statvfs: { args: [P, P], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  sendto: { args: [i32, P, u64, i32, P, u32], returns: i64 },
  flock: { args: [i32, i32], returns: i32 },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
let lib: Lib | undefined;

/** libc is opened on first use, so commands that never touch the kernel never load it. */
function libc(): Lib {
  lib ??= dlopen("libc.so.6", symbols).symbols;
  return lib;
}

/** SyscallError is a failed libc call, with what failed, on which path, and what to do. */
export class SyscallError extends FieldrelayError {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(syscall: string, errno: number, path?: string, hint?: string) {
    super(`${path ? `${path}: ` : ""}${syscall} failed: ${errnoDescription(errno)} (${errnoName(errno)})`, {
      ...(hint ? { hint } : {}),
      context: { syscall, errno: errnoName(errno), path },
    });
    this.errno = errno;
    this.code = errnoName(errno);
    this.syscall = syscall;
    this.path = path;
  }
}

/** errno of the last failed call on this thread; read it right after the call. */
export function errno(): number {
  const location = libc().__errno_location();
  return location ? ffiRead.i32(location, 0) : 0;
}

function check(result: number | bigint, syscall: string, path?: string): number {
  const n = Number(result);
  if (n < 0) throw new SyscallError(syscall, errno(), path);
  return n;
}

const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

export function open(path: string, flags: number, mode = 0): number {
  return check(libc().open(cstr(path), flags | O_CLOEXEC, mode), "open", path);
}

export function close(fd: number): void {
  check(libc().close(fd), "close");
}

/** read(2) into buf; returns bytes read (0 at end of file). */
export function read(fd: number, buf: Uint8Array, path?: string): number {
  return check(libc().read(fd, buf, buf.byteLength), "read", path);
}

export function write(fd: number, buf: Uint8Array, path?: string): number {
  return check(libc().write(fd, buf, buf.byteLength), "write", path);
}

/** ioctl(2) with a struct argument (or a plain integer argument passed as a number). */
export function ioctl(
  fd: number,
  request: number,
  arg: Uint8Array | number,
  path?: string,
  name = "ioctl",
): number {
  return check(libc().ioctl(fd, request, arg as never), name, path);
}

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;

/** poll(2) over (fd, events) pairs; returns revents per fd. Blocks: call it from a Worker. */
export function poll(fds: Array<{ fd: number; events: number }>, timeoutMs: number): number[] {
  const buf = new Uint8Array(new ArrayBuffer(8 * fds.length));
  const view = new DataView(buf.buffer);
  fds.forEach((f, i) => {
    view.setInt32(i * 8, f.fd, true);
    view.setInt16(i * 8 + 4, f.events, true);
  });
  check(libc().poll(buf, fds.length, timeoutMs), "poll");
  return fds.map((_, i) => view.getInt16(i * 8 + 6, true));
}

/** pipe2(2) with O_CLOEXEC; returns [readEnd, writeEnd]. */
export function pipe(flags = 0): [number, number] {
  const buf = new Int32Array(new ArrayBuffer(8));
  check(libc().pipe2(buf, flags | O_CLOEXEC), "pipe2");
  return [buf[0]!, buf[1]!];
}

export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;

/** clock_gettime(2) in nanoseconds. CLOCK_MONOTONIC counts from boot, not process start. */
export function clockGettimeNs(clock: number): bigint {
  const ts = new BigInt64Array(new ArrayBuffer(16));
  check(libc().clock_gettime(clock, ts), "clock_gettime");
  return ts[0]! * 1_000_000_000n + ts[1]!;
}

/** adjtimex(2) on a caller-encoded struct timex (read-only when modes = 0); returns the clock state. */
export function adjtimex(timex: Uint8Array): number {
  return check(libc().adjtimex(timex), "adjtimex");
}

/** statvfs(3): free and total bytes of the filesystem holding path. */
export function statvfs(path: string): { totalBytes: number; freeBytes: number; availableBytes: number } {
  // struct statvfs on 64-bit Linux: f_bsize@0 f_frsize@8 f_blocks@16 f_bfree@24 f_bavail@32 (u64 each)
  const buf = new Uint8Array(new ArrayBuffer(128));
  check(libc().statvfs(cstr(path), buf), "statvfs", path);
  const v = new DataView(buf.buffer);
  const frsize = Number(v.getBigUint64(8, true)) || Number(v.getBigUint64(0, true));
  return {
    totalBytes: Number(v.getBigUint64(16, true)) * frsize,
    freeBytes: Number(v.getBigUint64(24, true)) * frsize,
    availableBytes: Number(v.getBigUint64(32, true)) * frsize,
  };
}

export const LOCK_EX = 2;
export const LOCK_NB = 4;

/**
 * flock(2) on an open fd. Returns false when LOCK_NB was asked and another open file description
 * holds a conflicting lock (EWOULDBLOCK); throws SyscallError on any other failure.
 */
export function flock(fd: number, operation: number, path?: string): boolean {
  if (libc().flock(fd, operation) === 0) return true;
  const e = errno();
  if (e === 11 /* EWOULDBLOCK */) return false;
  throw new SyscallError("flock", e, path);
}

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_NOSIGNAL = 0x4000;

export function socket(domain: number, type: number, protocol = 0): number {
  return check(libc().socket(domain, type | SOCK_CLOEXEC, protocol), "socket");
}

/** sendto(2) with a caller-encoded sockaddr. */
export function sendto(fd: number, data: Uint8Array, addr: Uint8Array, path?: string): number {
  return check(libc().sendto(fd, data, data.byteLength, MSG_NOSIGNAL, addr, addr.byteLength), "sendto", path);
}

/** Address of a buffer, for structs that hold pointers to other buffers. */
export function addressOf(buf: Uint8Array): number {
  return ptr(buf);
}
