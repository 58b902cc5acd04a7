/**
 * The README's Python batch decoder, run as written: the ```python block under "Batch format" is
 * the documented rule, so tests decode with it rather than with a copy that could drift.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export function readmeDecoderSource(): string {
  const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
  const section = readme.slice(readme.indexOf("### Batch format"));
  const m = /```python\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md has no ```python block under "### Batch format"');
  return m[1]!;
}

/** Decode each payload with the README's decode_readings (python3); one list of readings per payload. */
export function decodeWithReadmePython(payloads: Uint8Array[]): unknown[][] {
  const dir = mkdtempSync(join(tmpdir(), "fr-pydecode-"));
  try {
    const script = join(dir, "decode.py");
    writeFileSync(
      script,
      `${readmeDecoderSource()}\nimport base64, sys\nprint(json.dumps([decode_readings(base64.b64decode(p)) for p in json.load(sys.stdin)]))\n`,
    );
    const input = JSON.stringify(payloads.map((p) => Buffer.from(p).toString("base64")));
    const r = Bun.spawnSync(["python3", script], {
      stdin: Buffer.from(input),
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`python3 decode failed: ${r.stderr.toString()}`);
    return JSON.parse(r.stdout.toString());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
