/** Linux errno numbers (identical on x86_64 and aarch64: asm-generic) and their names. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ECONNREFUSED: 111,
  ETIMEDOUT: 110,
  EREMOTEIO: 121,
} as const;

export type ErrnoName = keyof typeof Errno;

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

const descriptions: Partial<Record<ErrnoName, string>> = {
  ENOENT: "no such file or device",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EBUSY: "device or resource busy",
  ENXIO: "no such device or address (no acknowledgement)",
  EREMOTEIO: "remote I/O error (no acknowledgement)",
  ENOTTY: "inappropriate ioctl for device",
  ENODEV: "no such device",
  EINVAL: "invalid argument",
  EIO: "input/output error",
  ETIMEDOUT: "timed out",
  ENOSYS: "function not implemented",
  EOPNOTSUPP: "operation not supported",
  EAGAIN: "resource temporarily unavailable",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
};

export function errnoDescription(errno: number): string {
  return descriptions[errnoName(errno) as ErrnoName] ?? errnoName(errno).toLowerCase();
}
