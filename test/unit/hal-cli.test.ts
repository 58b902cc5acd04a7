import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/index.ts";

const root = mkdtempSync(join(tmpdir(), "fr-i2c-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "dev"));
writeFileSync(join(root, "dev", "i2c-2"), "");

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("fieldrelay i2c", () => {
  it("scan exits 69 and says how to enable I2C when the adapter is missing", async () => {
    const r = await cli("i2c", "scan", "--root", root);
    expect(r.code).toBe(69);
    expect(r.err).toBe(
      `fieldrelay: ${root}/dev/i2c-1: no such adapter (ENOENT) — enable I2C with dtparam=i2c_arm=on`,
    );
  });

  it("read exits 69 when the path is not an i2c-dev adapter (the kernel answers ENOTTY)", async () => {
    const r = await cli("i2c", "read", "0x76", "0xd0", "--bus", "2", "--root", root);
    expect(r.code).toBe(69);
    expect(r.err).toMatch(/dev\/i2c-2: not an I2C adapter \(ioctl\(I2C_FUNCS\) failed with ENOTTY\)/);
  });

  it("refuses addresses outside 0x03–0x77, lengths over 32 and bytes over 0xff with exit 64", async () => {
    expect((await cli("i2c", "read", "0x78", "--root", root)).code).toBe(64);
    expect((await cli("i2c", "read", "0x76", "-n", "33", "--root", root)).code).toBe(64);
    const r = await cli("i2c", "write", "0x76", "0xf4", "256", "--root", root);
    expect(r.code).toBe(64);
    expect(r.err).toBe('fieldrelay: byte must be 0..255 (decimal or 0x hex), got "256"');
  });
});

describe("fieldrelay gpio", () => {
  it("info exits 69 naming the missing chips", async () => {
    const r = await cli("gpio", "info", "--root", join(root, "empty"));
    expect(r.code).toBe(69);
    expect(r.err).toMatch(/dev\/gpiochip\*: no such GPIO chip \(ENOENT\) — no GPIO character device/);
  });

  it("get exits 69 when gpiochip0 is absent, and refuses a value other than 0 or 1 for set with 64", async () => {
    const r = await cli("gpio", "get", "17", "--root", root);
    expect(r.code).toBe(69);
    expect(r.err).toBe(
      `fieldrelay: ${root}/dev/gpiochip0: no such GPIO chip (ENOENT) — no GPIO character device: a kernel with CONFIG_GPIO_CDEV_V2 (5.10+) provides /dev/gpiochipN`,
    );
    expect((await cli("gpio", "set", "17", "2", "--root", root)).code).toBe(64);
  });

  it("watch exits 69 when the line cannot be requested", async () => {
    const r = await cli("gpio", "watch", "GPIO17", "--root", root);
    expect(r.code).toBe(69);
    expect(r.err).toBe(
      'fieldrelay: no GPIO line named "GPIO17" on any chip (none found) — list line names with `fieldrelay gpio info`',
    );
  });
});
