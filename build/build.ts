/**
 * The build: one self-contained executable per target in dist/, stamped with version, commit and
 * target, minified, with an embedded sourcemap, plus the GPIO-naming device-tree overlay
 * (dist/fieldrelay-gpio.dtbo, needs dtc) and dist/SHA256SUMS. Fails if anything that
 * cannot be embedded (a native .node addon) reaches the bundle.
 *
 *   bun build/build.ts [--target linux-arm64|linux-x64 ...]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "../src/errors/index.ts";
import { assembleBundle } from "./bundle.ts";
import { compileOverlay } from "./overlay.ts";

const ROOT = join(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const ENTRY = join(ROOT, "src/main.ts");
// Workers are separate entry points so the compiled binary embeds them (loaded relative to src/).
const WORKERS = [join(ROOT, "src/hal/gpio/event-worker.ts")];
const ALL_TARGETS = ["linux-arm64", "linux-x64"] as const;
type Target = (typeof ALL_TARGETS)[number];

function fail(message: string): never {
  process.stderr.write(`build: ${message}\n`);
  process.exit(1);
}

function requestedTargets(argv: string[]): Target[] {
  const picked: Target[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== "--target")
      fail(`unknown argument ${argv[i]}; usage: bun build/build.ts [--target linux-arm64|linux-x64]`);
    const t = argv[++i] as Target;
    if (!ALL_TARGETS.includes(t)) fail(`unknown target ${t}; choose from ${ALL_TARGETS.join(", ")}`);
    picked.push(t);
  }
  return picked.length ? picked : [...ALL_TARGETS];
}

function gitCommit(): string {
  const rev = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT });
  if (rev.exitCode !== 0) return "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: ROOT });
  return rev.stdout.toString().trim() + (dirty.stdout.toString().trim() ? "-dirty" : "");
}

/** Bundle once without compiling and refuse native addons: they cannot be embedded or cross-compiled. */
async function checkEmbeddable(): Promise<void> {
  const result = await Bun.build({ entrypoints: [ENTRY, ...WORKERS], target: "bun", metafile: true });
  if (!result.success) fail(`bundle failed:\n${result.logs.map(String).join("\n")}`);
  const native = [
    ...result.outputs.filter((o) => o.path.endsWith(".node")).map((o) => o.path),
    ...Object.keys(result.metafile?.inputs ?? {}).filter((p) => p.endsWith(".node")),
  ];
  if (native.length) fail(`native addons cannot be embedded in the binary: ${native.join(", ")}`);
}

async function compile(target: Target, version: string, commit: string): Promise<string> {
  const outfile = join(DIST, `fieldrelay-${target}`);
  const define = {
    FIELDRELAY_VERSION: JSON.stringify(version),
    FIELDRELAY_COMMIT: JSON.stringify(commit),
    FIELDRELAY_TARGET: JSON.stringify(target),
  };
  const args = [
    process.execPath,
    "build",
    "--compile",
    // Precompiled bytecode: the runtime skips parsing the bundle at every start (version:
    // ~70 → ~15 ms on x64, measured by npm run bench). Needs an entry without top-level await.
    "--bytecode",
    `--target=bun-${target}`,
    "--minify",
    "--sourcemap",
    ...Object.entries(define).flatMap(([k, v]) => ["--define", `${k}=${v}`]),
    ENTRY,
    ...WORKERS,
    "--outfile",
    outfile,
  ];
  const proc = Bun.spawnSync(args, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) fail(`compiling for ${target} failed (exit ${proc.exitCode})`);
  return outfile;
}

const targets = requestedTargets(process.argv.slice(2));
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const commit = gitCommit();
await checkEmbeddable();
rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
const sums: string[] = [];
for (const target of targets) {
  const file = await compile(target, version, commit);
  const hash = new Bun.CryptoHasher("sha256").update(readFileSync(file)).digest("hex");
  sums.push(`${hash}  ${file.slice(DIST.length + 1)}`);
  process.stdout.write(`build: ${file} (${target}, ${version}, ${commit})\n`);
}
try {
  const dtbo = compileOverlay(join(ROOT, "overlays/fieldrelay-gpio.dts"), join(DIST, "fieldrelay-gpio.dtbo"));
  sums.push(
    `${new Bun.CryptoHasher("sha256").update(readFileSync(dtbo)).digest("hex")}  fieldrelay-gpio.dtbo`,
  );
  process.stdout.write(`build: ${dtbo} (device-tree overlay)\n`);
} catch (error) {
  fail(describeError(error));
}
writeFileSync(join(DIST, "SHA256SUMS"), `${sums.join("\n")}\n`);
// The install bundle (dist/bundle/): what install.sh, push.sh and the image baker take to a device.
if (targets.includes("linux-arm64")) {
  const out = join(DIST, "bundle");
  try {
    const line = assembleBundle({
      out,
      binary: join(DIST, "fieldrelay-linux-arm64"),
      dtbo: join(DIST, "fieldrelay-gpio.dtbo"),
    });
    process.stdout.write(`build: ${out} (${line})\n`);
  } catch (error) {
    fail(describeError(error));
  }
}
