import { describe, expect, it } from "vitest";
import { hostDebianArchive, parseDeb822, parseOneLine, sourceLine } from "../boot/support/apt-sources.ts";
import { kernelPackageFrom, moduleDepends } from "../boot/support/kernel.ts";
import { parseLineNames } from "../boot/support/raspi.ts";

const MIRROR = "http://mirror.invalid/debian";

describe("Boot test apt sources: the host's configured Debian archive", () => {
  const deb822 = `Types: deb
# a comment
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR}-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://off.invalid/debian
Suites: bookworm
Components: main
`;

  it("reads deb822 stanzas, skipping deb-src and disabled ones", () => {
    const s = parseDeb822(deb822, "debian.sources");
    expect(s.map((x) => x.uri)).toEqual([MIRROR, `${MIRROR}-security`]);
    expect(s[0]?.suites).toEqual(["bookworm", "bookworm-updates"]);
    expect(s[0]?.signedBy).toBe("/usr/share/keyrings/debian-archive-keyring.gpg");
  });

  it("reads one-line entries with options", () => {
    const s = parseOneLine(
      `# old style\ndeb [arch=amd64 signed-by=/k.gpg] ${MIRROR}/ bookworm main contrib\ndeb-src ${MIRROR} bookworm main\n`,
      "sources.list",
    );
    expect(s).toEqual([
      {
        uri: `${MIRROR}/`,
        suites: ["bookworm"],
        components: ["main", "contrib"],
        signedBy: "/k.gpg",
        file: "sources.list",
      },
    ]);
  });

  it("picks the entry serving the host's release from main, and derives another suite's line from it", () => {
    const sources = [
      ...parseDeb822(deb822, "a"),
      ...parseOneLine("deb http://other.invalid/x stable main\n", "b"),
    ];
    const archive = hostDebianArchive(sources, "bookworm");
    expect(archive).toEqual({ uri: MIRROR, signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg" });
    expect(sourceLine(archive, "trixie")).toBe(
      `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR} trixie main`,
    );
  });

  it("says what to do when no source serves the host's release", () => {
    expect(() => hostDebianArchive([], "bookworm")).toThrow(/no apt source serves "bookworm main"/);
  });
});

describe("Boot test kernels", () => {
  it("resolves a metapackage to its versioned kernel, the 16k flavour apart from the 4k one", () => {
    const deps4k = "linux-image-arm64\n  Depends: linux-image-6.1.0-50-arm64\n";
    const deps16k = "linux-image-arm64-16k\n  Depends: linux-image-6.12.117+deb13-arm64-16k\n";
    expect(kernelPackageFrom("linux-image-arm64", deps4k)).toBe("linux-image-6.1.0-50-arm64");
    expect(kernelPackageFrom("linux-image-arm64-16k", deps16k)).toBe("linux-image-6.12.117+deb13-arm64-16k");
    expect(kernelPackageFrom("linux-image-arm64", deps16k)).toBeUndefined();
  });

  it("reads a module's depends= from its .modinfo strings", () => {
    const ko = Buffer.from("\x7fELF...\0license=GPL\0depends=jbd2,mbcache,crc16\0name=ext4\0softdepends=x\0");
    expect(moduleDepends(ko)).toEqual(["jbd2", "mbcache", "crc16"]);
    expect(moduleDepends(Buffer.from("\0depends=\0name=crc16\0"))).toEqual([]);
  });

  it("keeps an unnamed line's empty name when splitting the device tree's gpio-line-names", () => {
    expect(parseLineNames(Buffer.from("ID_SDA\0GPIO27\0\0LAN_RUN_BOOT\0"))).toEqual([
      "ID_SDA",
      "GPIO27",
      "",
      "LAN_RUN_BOOT",
    ]);
  });
});
