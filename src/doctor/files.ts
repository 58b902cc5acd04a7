/** Small read-only file helpers for checks: every path is under the doctor's root. */
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";

/** root + an absolute path such as /proc/self/mountinfo. */
export const under = (root: string, path: string) => join(root, path);

/** The file's text, or undefined when it cannot be read. */
export function readText(path: string, maxBytes?: number): string | undefined {
  try {
    if (maxBytes === undefined) return readFileSync(path, "utf8");
    const fd = openSync(path, "r");
    try {
      const buf = Buffer.alloc(maxBytes);
      const n = readSync(fd, buf, 0, maxBytes, null);
      return buf.subarray(0, n).toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

export { existsSync };
