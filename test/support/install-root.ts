/**
 * A prepared tree for `install.sh --root`: the account files of a minimal Debian (passwd, group,
 * shadow, gshadow), a firmware config.txt with a line the user already set, and helpers to run the
 * installer and fingerprint the tree (paths, types, modes, owners, contents, link targets).
 */
import { createHash } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const USER_CONFIG_TXT = "# user settings\ndtparam=audio=on\ndtparam=i2c_arm=on\n";

const ACCOUNTS = {
  passwd: [
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  ],
  group: ["root:x:0:", "daemon:x:1:", "dialout:x:20:", "nogroup:x:65534:"],
  shadow: ["root:*:19700:0:99999:7:::", "daemon:*:19700:0:99999:7:::", "nobody:*:19700:0:99999:7:::"],
  gshadow: ["root:*::", "daemon:*::", "dialout:*::", "nogroup:*::"],
} as const;

/** A fresh tree under a new temp dir; returns its path. */
export function prepareRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "fr-root-"));
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(join(root, "boot/firmware"), { recursive: true });
  for (const [name, lines] of Object.entries(ACCOUNTS)) {
    writeFileSync(join(root, "etc", name), `${lines.join("\n")}\n`, {
      mode: name.endsWith("shadow") ? 0o640 : 0o644,
    });
  }
  writeFileSync(join(root, "boot/firmware/config.txt"), USER_CONFIG_TXT);
  return root;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (no shell), collecting output. */
export async function exec(cmd: string[], timeoutMs = 120_000): Promise<Result> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** One line per entry below `root`: path, type, mode, uid, gid, and content hash or link target. */
export function treeListing(root: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    const meta = `${rel || "."} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) lines.push(`${meta} -> ${readlinkSync(abs)}`);
    else if (st.isFile())
      lines.push(`${meta} ${createHash("sha256").update(readFileSync(abs)).digest("hex")}`);
    else lines.push(meta);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk("");
  return lines;
}

/** The fields of a colon-separated account file line for `name`, or undefined. */
export function accountEntry(root: string, file: string, name: string): string[] | undefined {
  return readFileSync(join(root, "etc", file), "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === name);
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/** Why a private mount namespace cannot be made here (undefined when it can); throws under CI=true. */
export async function unshareRefused(): Promise<string | undefined> {
  const r = await exec(["unshare", "-m", "--propagation", "private", "true"]);
  if (r.code === 0) return undefined;
  const reason = `unshare -m is not permitted here: ${r.stderr.trim()}`;
  if (process.env.CI === "true") throw new Error(reason);
  return reason;
}

/** Run a bash script (args as $0 $1 …) in a private mount namespace: its mounts vanish with it. */
export function execInMountNamespace(script: string, args: string[]): Promise<Result> {
  return exec(["unshare", "-m", "--propagation", "private", "bash", "-c", script, ...args]);
}
