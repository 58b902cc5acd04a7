/**
 * What this binary is: stamped by build/build.ts through --define; a source checkout run by
 * `bun src/main.ts` reports "dev" instead of guessing.
 */
declare const FIELDRELAY_VERSION: string | undefined;
declare const FIELDRELAY_COMMIT: string | undefined;
declare const FIELDRELAY_TARGET: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  target: string;
  bun: string;
}

export function buildInfo(): BuildInfo {
  return {
    version: typeof FIELDRELAY_VERSION === "string" ? FIELDRELAY_VERSION : "0.0.0-dev",
    commit: typeof FIELDRELAY_COMMIT === "string" ? FIELDRELAY_COMMIT : "unknown",
    target:
      typeof FIELDRELAY_TARGET === "string"
        ? FIELDRELAY_TARGET
        : `source-${process.platform}-${process.arch}`,
    bun: Bun.version,
  };
}
