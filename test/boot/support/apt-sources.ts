/**
 * The Debian archive this machine's apt is configured to use, so the boot tests fetch packages
 * from the same mirror as every other `apt-get` here and no host name is written into the
 * repository. Reads one-line (`*.list`) and deb822 (`*.sources`) files under /etc/apt and picks
 * the entry that serves the host's own release (VERSION_CODENAME in /etc/os-release) from main;
 * a newer suite (trixie for the 16 KiB-page kernel) is served by the same archive root.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  signedBy?: string;
  /** Where it was read from, for error messages. */
  file: string;
}

/** Parses a deb822 `.sources` file (stanzas separated by blank lines; `#` comments). */
export function parseDeb822(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last = "";
    for (const raw of stanza.split("\n")) {
      if (raw.startsWith("#")) continue;
      if (/^\s/.test(raw) && last) {
        fields[last] += ` ${raw.trim()}`;
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (!m?.[1]) continue;
      last = m[1].toLowerCase();
      fields[last] = (m[2] ?? "").trim();
    }
    if (!(fields.types ?? "").split(/\s+/).includes("deb")) continue;
    if ((fields.enabled ?? "yes").toLowerCase() === "no") continue;
    const words = (k: string) => (fields[k] ?? "").split(/\s+/).filter(Boolean);
    for (const uri of words("uris")) {
      out.push({
        uri,
        suites: words("suites"),
        components: words("components"),
        ...(fields["signed-by"] ? { signedBy: fields["signed-by"] } : {}),
        file,
      });
    }
  }
  return out;
}

/** Parses one-line `deb [opts] uri suite component…` entries. */
export function parseOneLine(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m?.[2] || !m[3]) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? "")?.[1];
    out.push({
      uri: m[2],
      suites: [m[3]],
      components: (m[4] ?? "").split(/\s+/).filter(Boolean),
      ...(signedBy ? { signedBy } : {}),
      file,
    });
  }
  return out;
}

/** Every `deb` entry the host's apt reads (sources.list, sources.list.d/*.list and *.sources). */
export function hostAptSources(etcApt = "/etc/apt"): AptSource[] {
  const sources: AptSource[] = [];
  const main = join(etcApt, "sources.list");
  if (existsSync(main)) sources.push(...parseOneLine(readFileSync(main, "utf8"), main));
  const dir = join(etcApt, "sources.list.d");
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      if (name.endsWith(".list")) sources.push(...parseOneLine(readFileSync(file, "utf8"), file));
      else if (name.endsWith(".sources")) sources.push(...parseDeb822(readFileSync(file, "utf8"), file));
    }
  }
  return sources;
}

/** The host's Debian codename (bookworm), from os-release. */
export function hostCodename(osRelease = "/etc/os-release"): string {
  const text = existsSync(osRelease) ? readFileSync(osRelease, "utf8") : "";
  const name = /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(text)?.[1];
  if (!name) throw new Error(`${osRelease} has no VERSION_CODENAME: the boot tests need a Debian host`);
  return name;
}

export interface DebianArchive {
  /** The archive root, e.g. the configured mirror's …/debian. */
  uri: string;
  /** The keyring apt verifies it with (the host's, which carries the next release's keys too). */
  signedBy: string;
}

const DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** The Debian archive the host installs its own release from: the entry for <codename> main. */
export function hostDebianArchive(sources = hostAptSources(), codename = hostCodename()): DebianArchive {
  const entry = sources.find((s) => s.suites.includes(codename) && s.components.includes("main"));
  if (!entry) {
    throw new Error(
      `no apt source serves "${codename} main" (read /etc/apt/sources.list and sources.list.d/): ` +
        "the boot tests fetch Debian packages through the host's configured mirror; add one",
    );
  }
  return { uri: entry.uri.replace(/\/+$/, ""), signedBy: entry.signedBy ?? DEFAULT_KEYRING };
}

/** A one-line sources.list entry for suite from the host's archive (for a private apt state). */
export function sourceLine(archive: DebianArchive, suite: string): string {
  return `deb [signed-by=${archive.signedBy}] ${archive.uri} ${suite} main`;
}
