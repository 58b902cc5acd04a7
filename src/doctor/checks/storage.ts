/**
 * Where the queue lives: the data directory's filesystem must be writable and should be ext4 with
 * data=journal (what the image and fstab set up: a power cut then tears neither SQLite's pages nor
 * the filesystem's); the root should be read-only (an SD card's root written by a power cut is how
 * Pis stop booting); free space must cover the queue's budgets.
 */
import { basename, dirname } from "node:path";
import { existsSync, readText, under } from "../files.ts";
import { isReadOnly, type Mount, mountOf, parseMountinfo } from "../mountinfo.ts";
import { type Check, type CheckResult, type DoctorContext, fail, ok, warn } from "../types.ts";

const MiB = 1024 * 1024;

/** data=journal, from the mount's super options or the kernel's /proc/fs/ext4/<dev>/options. */
function dataMode(ctx: DoctorContext, m: Mount): string | undefined {
  const fromMount = m.superOptions.find((o) => o.startsWith("data="));
  if (fromMount) return fromMount;
  const options = readText(under(ctx.root, `/proc/fs/ext4/${basename(m.source)}/options`));
  return options
    ?.split(/[\n,]/)
    .map((o) => o.trim())
    .find((o) => o.startsWith("data="));
}

export const storageCheck: Check = (ctx) => {
  const mountinfoPath = under(ctx.root, "/proc/self/mountinfo");
  const text = readText(mountinfoPath);
  if (text === undefined)
    return [fail("storage.mounts", `cannot read ${mountinfoPath}`, "mount /proc (and check system.root)")];
  const mounts = parseMountinfo(text);
  const results: CheckResult[] = [];

  const root = mounts.find((m) => m.mountPoint === "/");
  if (root && isReadOnly(root)) results.push(ok("storage.root_ro", `/ is read-only (${root.source})`));
  else
    results.push(
      warn(
        "storage.root_ro",
        `/ is mounted read-write${root ? ` (${root.source})` : ""}: a power cut while it is written can leave the card unbootable`,
        "bake the image with npm run bake (ro root, tmpfs for logs and state) or add ro to cmdline.txt and the fstab",
      ),
    );

  if (!ctx.config) return results;
  const dataDir = dirname(ctx.config.queue.path);
  if (!existsSync(dataDir)) {
    results.push(
      fail(
        "storage.data_dir",
        `${dataDir} (queue.path's directory) does not exist`,
        "mount the data partition there (fstab: LABEL=fieldrelay-data) or set queue.path",
      ),
    );
    return results;
  }
  const m = mountOf(mounts, dataDir);
  if (!m) {
    results.push(fail("storage.data_dir", `no mount in ${mountinfoPath} holds ${dataDir}`, "check /proc"));
    return results;
  }
  if (isReadOnly(m)) {
    results.push(
      fail(
        "storage.data_dir",
        `${dataDir} is on ${m.mountPoint} (${m.source}), mounted read-only: the queue cannot be written`,
        `give it its own writable partition (LABEL=fieldrelay-data at ${dataDir}) or point queue.path at one`,
      ),
    );
  } else {
    results.push(ok("storage.data_dir", `${dataDir} is on ${m.mountPoint} (${m.source}, ${m.fsType}, rw)`));
  }
  const mode = m.fsType === "ext4" ? dataMode(ctx, m) : undefined;
  if (mode === "data=journal")
    results.push(ok("storage.data_journal", `${m.mountPoint} (${m.source}) is ext4 with data=journal`));
  else
    results.push(
      warn(
        "storage.data_journal",
        `${m.mountPoint} (${m.source}) is ${m.fsType}${m.fsType === "ext4" ? ` with ${mode ?? "data=ordered"}` : ""}, not ext4 with data=journal`,
        `mount it with data=journal (fstab options defaults,noatime,data=journal, or tune2fs -o journal_data ${m.source})`,
      ),
    );

  try {
    const { availableBytes } = ctx.diskSpace(dataDir);
    const minFree = ctx.config.queue.min_free_disk_mb * MiB;
    const budget = ctx.config.queue.max_bytes;
    const freeMiB = Math.floor(availableBytes / MiB);
    if (availableBytes < minFree)
      results.push(
        fail(
          "storage.free",
          `${freeMiB} MiB free on ${m.mountPoint}, below queue.min_free_disk_mb (${ctx.config.queue.min_free_disk_mb}): the queue evicts readings`,
          "free space on the data partition or grow it",
        ),
      );
    else if (availableBytes < minFree + budget)
      results.push(
        warn(
          "storage.free",
          `${freeMiB} MiB free on ${m.mountPoint}: less than queue.max_bytes (${Math.round(budget / MiB)} MiB) + min_free_disk_mb, so the disk, not the budget, will bound an outage backlog`,
          "grow the data partition or lower queue.max_bytes",
        ),
      );
    else
      results.push(
        ok("storage.free", `${freeMiB} MiB free on ${m.mountPoint}, enough for the queue's budgets`),
      );
  } catch (error) {
    results.push(
      fail("storage.free", `statvfs ${dataDir}: ${(error as Error).message}`, "check the data partition"),
    );
  }
  return results;
};
