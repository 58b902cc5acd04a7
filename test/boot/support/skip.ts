/** Why a boot suite cannot run here (undefined: it can); under CI=true a reason is a failure. */
import { existsSync } from "node:fs";
import { join } from "node:path";

function reason(text: string): string {
  if (process.env.CI === "true") throw new Error(`CI=true but ${text}`);
  return text;
}

/** mmdebstrap into a tar and the initramfs's /dev/console node need root; CI runs as root. */
export function notRoot(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  return reason("needs root (mmdebstrap, device nodes in the initramfs)");
}

/** The baker installs dist/bundle (written by npm run build); under CI it must be there. */
export function bundleMissing(bundle: string): string | undefined {
  if (existsSync(join(bundle, "install.sh"))) return undefined;
  return reason(`${bundle} is not built (run npm run build)`);
}
