/**
 * Strict little parsers for the files fieldrelay puts on a device (systemd unit and drop-ins,
 * fstab, udev rules, chrony directives), so tests can check them where the real consumer
 * (systemd, mount, udevd, chronyd) is not available or would not complain. Each parser throws
 * with the line number on anything it does not understand, instead of skipping it.
 */

/** One `[Section]` of a systemd-style INI file: its keys in order, repeated keys kept. */
export type IniFile = Map<string, Array<[key: string, value: string]>>;

/** parseIni reads a systemd unit or drop-in (`[Section]`, `Key=value`, `#`/`;` comments). */
export function parseIni(text: string): IniFile {
  const sections: IniFile = new Map();
  let current: Array<[string, string]> | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]!) ?? [];
      sections.set(header[1]!, current);
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1}: not Key=value: ${raw}`);
    if (!current) throw new Error(`line ${i + 1}: ${kv[1]} is outside any [Section]`);
    current.push([kv[1]!, kv[2]!.trim()]);
  });
  return sections;
}

/** Every value of `key` in `section`, in file order (systemd list settings may repeat). */
export function iniValues(file: IniFile, section: string, key: string): string[] {
  return (file.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The value of a key that must appear exactly once in its section. */
export function iniValue(file: IniFile, section: string, key: string): string {
  const values = iniValues(file, section, key);
  if (values.length !== 1)
    throw new Error(`[${section}] ${key}: expected once, found ${values.length} times`);
  return values[0]!;
}

export interface FstabEntry {
  spec: string;
  file: string;
  vfstype: string;
  options: string[];
  freq: number;
  passno: number;
  line: number;
}

/** The device placeholders of deploy/device/fstab.ro-root. */
export interface FstabDevices {
  boot: string;
  root: string;
  data: string;
}

/** renderFstab substitutes @BOOT_DEV@, @ROOT_DEV@ and @DATA_DEV@ in the template. */
export function renderFstab(template: string, devices: FstabDevices): string {
  return template
    .replaceAll("@BOOT_DEV@", devices.boot)
    .replaceAll("@ROOT_DEV@", devices.root)
    .replaceAll("@DATA_DEV@", devices.data);
}

/** parseFstab reads fstab(5): every entry must have all six fields. */
export function parseFstab(text: string): FstabEntry[] {
  const entries: FstabEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    if (fields.length !== 6) throw new Error(`line ${i + 1}: ${fields.length} fields, fstab needs 6: ${raw}`);
    const [spec, file, vfstype, options, freq, passno] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!/^\d$/.test(freq) || !/^\d$/.test(passno))
      throw new Error(`line ${i + 1}: dump and pass must be digits: ${raw}`);
    entries.push({
      spec,
      file,
      vfstype,
      options: options.split(","),
      freq: Number(freq),
      passno: Number(passno),
      line: i + 1,
    });
  });
  return entries;
}

export interface UdevPair {
  key: string;
  /** The {attribute} of keys like ATTR{name}, else undefined. */
  attribute: string | undefined;
  op: "==" | "!=" | "=" | "+=" | "-=" | ":=";
  value: string;
}

export interface UdevRule {
  line: number;
  pairs: UdevPair[];
}

const UDEV_MATCH_OPS = new Set(["==", "!="]);
// udev(7): keys a rule may match on, and keys it may assign. Others are typos udevd would reject.
const UDEV_MATCH_KEYS = new Set([
  "ACTION",
  "DEVPATH",
  "KERNEL",
  "KERNELS",
  "NAME",
  "SYMLINK",
  "SUBSYSTEM",
  "SUBSYSTEMS",
  "DRIVER",
  "DRIVERS",
  "ATTR",
  "ATTRS",
  "SYSCTL",
  "TAG",
  "TAGS",
  "ENV",
  "CONST",
  "TEST",
  "PROGRAM",
  "RESULT",
]);
const UDEV_ASSIGN_KEYS = new Set([
  "NAME",
  "SYMLINK",
  "OWNER",
  "GROUP",
  "MODE",
  "SECLABEL",
  "ATTR",
  "SYSCTL",
  "ENV",
  "TAG",
  "RUN",
  "LABEL",
  "GOTO",
  "IMPORT",
  "OPTIONS",
]);

/**
 * parseUdevRules reads udev(7) rules: each line a comma-separated list of KEY op "value"
 * (KEY{attr} where udev takes one), match keys with == / !=, assignments with = += -= :=.
 * (`udevadm verify` would do this, but only from systemd 253; Debian bookworm has 252.)
 */
export function parseUdevRules(text: string): UdevRule[] {
  const rules: UdevRule[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const pairs: UdevPair[] = [];
    const pair = /\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,?)\s*/y;
    let at = 0;
    while (at < line.length) {
      pair.lastIndex = at;
      const m = pair.exec(line);
      if (!m) throw new Error(`line ${i + 1}, column ${at + 1}: not KEY=="value": ${line.slice(at)}`);
      const [, key, attribute, op, value, comma] = m as unknown as [
        string,
        string,
        string,
        UdevPair["op"],
        string,
        string,
      ];
      const known = UDEV_MATCH_OPS.has(op) ? UDEV_MATCH_KEYS : UDEV_ASSIGN_KEYS;
      if (!known.has(key))
        throw new Error(
          `line ${i + 1}: ${key}${op} is not a udev ${UDEV_MATCH_OPS.has(op) ? "match" : "assignment"}`,
        );
      pairs.push({ key, attribute, op, value });
      at = pair.lastIndex;
      if (comma === "" && at < line.length)
        throw new Error(`line ${i + 1}: missing comma before ${line.slice(at)}`);
    }
    rules.push({ line: i + 1, pairs });
  });
  return rules;
}

/** The value a rule matches (==) or assigns (=) for key, if any. */
export function udevGet(rule: UdevRule, key: string, op: UdevPair["op"]): string | undefined {
  return rule.pairs.find((p) => p.key === key && p.op === op)?.value;
}

/** parseDirectives reads chrony.conf(5)-style lines: a directive name and its arguments. */
export function parseDirectives(text: string): Array<{ name: string; args: string[]; line: number }> {
  const out: Array<{ name: string; args: string[]; line: number }> = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    // chrony comments are whole lines starting with one of # ! ; %
    if (line === "" || /^[#!;%]/.test(line)) return;
    const [name, ...args] = line.split(/\s+/) as [string, ...string[]];
    if (!/^[a-z]+$/.test(name)) throw new Error(`line ${i + 1}: not a directive: ${raw}`);
    out.push({ name, args, line: i + 1 });
  });
  return out;
}
