/**
 * Which external programs the suites need, and what to do when one is missing: on a developer's
 * machine skip with a printed reason naming the Debian package; under CI=true fail instead,
 * because a skipped suite in CI is a hole nobody sees.
 */
import { existsSync } from "node:fs";

export interface Tool {
  cmd: string;
  pkg: string;
}

export const MOSQUITTO: Tool = { cmd: "mosquitto", pkg: "mosquitto" };
export const QEMU_AARCH64: Tool = { cmd: "qemu-aarch64-static", pkg: "qemu-user-static" };
export const OPENSSL: Tool = { cmd: "openssl", pkg: "openssl" };
export const GCC: Tool = { cmd: "gcc", pkg: "gcc" };
export const PYTHON3: Tool = { cmd: "python3", pkg: "python3" };
export const AARCH64_LIBC: Tool = {
  cmd: "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
  pkg: "libc6-arm64-cross",
};
/**
 * The multi-threaded build of libfaketime (time calls serialised across threads): Bun calls the
 * clock from several threads, and with the single-threaded build and FAKETIME_NO_CACHE one reading
 * in a CI run was stamped with the real time instead of the faked one.
 */
export const FAKETIME: Tool = {
  cmd: "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
  pkg: "libfaketime",
};

/** Debian's Chromium, driven headless by playwright-core (test/support/browser.ts). */
export const CHROMIUM: Tool = { cmd: "/usr/bin/chromium", pkg: "chromium" };

export const USERADD: Tool = { cmd: "useradd", pkg: "passwd" };
export const UNSHARE: Tool = { cmd: "unshare", pkg: "util-linux" };

export function which(cmd: string): string | undefined {
  if (cmd.startsWith("/")) return existsSync(cmd) ? cmd : undefined;
  for (const dir of [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    ...(process.env.PATH ?? "").split(":"),
  ]) {
    if (dir && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return undefined;
}

/**
 * Returns why a suite must be skipped, or undefined when every tool is present. Under CI=true a
 * missing tool throws, so the suite fails loudly instead of being skipped.
 */
export function missing(...tools: Tool[]): string | undefined {
  const absent = tools.filter((t) => which(t.cmd) === undefined);
  if (absent.length === 0) return undefined;
  const reason = `needs ${absent.map((t) => `${t.cmd} (apt-get install ${t.pkg})`).join(", ")}`;
  if (process.env.CI === "true") throw new Error(`CI=true and a required tool is missing: ${reason}`);
  console.warn(`skipping: ${reason}`);
  return reason;
}

/**
 * Command prefix that makes file permissions apply even to root: as root, setpriv drops
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set (the uid stays 0, so the repo
 * stays reachable wherever it was cloned); as another user, nothing is needed.
 */
export const WITHOUT_DAC_OVERRIDE: string[] =
  process.getuid?.() === 0 ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] : [];
