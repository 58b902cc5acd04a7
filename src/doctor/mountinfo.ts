/**
 * /proc/self/mountinfo, parsed (proc(5)): one line per mount,
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)    (8) (9)   (10)         (11)
 * mount point (5), per-mount options (6), optional fields up to "-", fs type (9), source (10),
 * super options (11). Paths escape space, tab, newline and backslash as octal (\040).
 */
export interface Mount {
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 3) continue;
    mounts.push({
      mountPoint: unescapeOctal(fields[4] ?? ""),
      options: (fields[5] ?? "").split(","),
      fsType: fields[dash + 1] ?? "",
      source: unescapeOctal(fields[dash + 2] ?? ""),
      superOptions: (fields[dash + 3] ?? "").split(","),
    });
  }
  return mounts;
}

/** The mount a path lives on: the longest mount point that contains it (the last one mounted wins). */
export function mountOf(mounts: Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint === "/" ? "/" : m.mountPoint.replace(/\/+$/, "");
    const inside = mp === "/" || path === mp || path.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.replace(/\/+$/, "").length)) best = m;
  }
  return best;
}

export const isReadOnly = (m: Mount) => m.options.includes("ro") || m.superOptions.includes("ro");
