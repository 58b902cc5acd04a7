/**
 * Issue #12, items 1 and 7: the config refuses what `run` would fail on later, and names the key
 * (or the environment variable) that holds the bad value.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, isLoopback, loadConfig } from "../../src/config/index.ts";
import { makeCerts } from "../support/certs.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fr-config-h-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function problems(text: string, env: Record<string, string> = {}): string[] {
  const path = join(dir, "config.toml");
  writeFileSync(path, text);
  try {
    loadConfig({ path, env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

const DEVICE = '[device]\nid = "pi-1"\n';

describe("Config names MQTT can carry", () => {
  it.each([
    ["device id with U+0085", '[device]\nid = "pi\\u0085"\n', /^device\.id: .*control character U\+0085/],
    ["device id with U+FFFF", '[device]\nid = "pi\\uFFFF"\n', /^device\.id: .*non-character U\+FFFF/],
    [
      "topic prefix with U+FDD0",
      `${DEVICE}[mqtt]\ntopic_prefix = "a\\uFDD0"\n`,
      /^mqtt\.topic_prefix: .*U\+FDD0/,
    ],
    [
      "sensor stream with U+009F",
      `${DEVICE}[[sensor]]\nname = "s"\ndriver = "simulated"\nstream = "x\\u009F"\n`,
      /^sensor\[0\]\.stream: .*U\+009F/,
    ],
    [
      "reserved stream",
      `${DEVICE}[[sensor]]\nname = "s"\ndriver = "simulated"\nstream = "status"\n`,
      /^sensor\[0\]\.stream: .*reserved/,
    ],
    [
      "sensor named like a reserved stream",
      `${DEVICE}[[sensor]]\nname = "cmd"\ndriver = "simulated"\n`,
      /^sensor\[0\]\.stream: .*reserved/,
    ],
  ])("refuses a %s", (_what, text, pattern) => {
    expect(problems(text)).toEqual([expect.stringMatching(pattern)]);
  });
});

describe("check-config completeness", () => {
  it("requires a token for non-loopback ingest and health listeners", () => {
    expect(problems(`${DEVICE}[ingest]\nlisten = "0.0.0.0:9107"\n[health]\nlisten = "[::]:9108"\n`)).toEqual([
      expect.stringMatching(/^ingest\.token: required because ingest\.listen/),
      expect.stringMatching(/^health\.token: required because health\.listen/),
    ]);
    expect(
      problems(`${DEVICE}[ingest]\nlisten = "0.0.0.0:9107"\n`, { FIELDRELAY_INGEST_TOKEN: "x".repeat(16) }),
    ).toEqual([]);
  });

  it("refuses ingest and health on the same port", () => {
    expect(
      problems(`${DEVICE}[ingest]\nlisten = "127.0.0.1:9200"\n[health]\nlisten = "127.0.0.1:9200"\n`),
    ).toEqual([expect.stringMatching(/^health\.listen: uses port 9200/)]);
  });

  it("reads and parses the TLS files", () => {
    const certs = makeCerts();
    onTestFinished(() => certs.remove());
    const garbage = join(dir, "garbage.pem");
    writeFileSync(garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    const tls = (ca: string, key = certs.clientKey) =>
      `${DEVICE}[mqtt.tls]\nca = "${ca}"\ncert = "${certs.clientCert}"\nkey = "${key}"\n`;
    expect(problems(tls(certs.ca))).toEqual([]);
    expect(problems(tls(join(dir, "missing.pem")))).toEqual([
      expect.stringMatching(/^mqtt\.tls\.ca: cannot read .*ENOENT/),
    ]);
    expect(problems(tls(garbage))).toEqual([
      expect.stringMatching(/^mqtt\.tls\.ca: .* not a valid PEM certificate/),
    ]);
    expect(problems(tls(certs.ca, certs.ca))).toEqual([
      expect.stringMatching(/^mqtt\.tls\.key: .* not a valid PEM key/),
    ]);
  });

  it("names the environment variable that set a bad value", () => {
    expect(problems(DEVICE, { FIELDRELAY_QUEUE_MAX_ROWS: "abc" })).toEqual([
      expect.stringMatching(/^queue\.max_rows \(from environment variable FIELDRELAY_QUEUE_MAX_ROWS\): /),
    ]);
  });

  it("says 'finite' for inf, not 'got number null'", () => {
    expect(problems(`${DEVICE}[[sensor]]\nname = "s"\ndriver = "simulated"\ninterval_s = inf\n`)).toEqual([
      expect.stringMatching(/^sensor\[0\]\.interval_s: expected a finite number, got Infinity/),
    ]);
  });
});

describe("isLoopback", () => {
  it.each([
    "localhost",
    "127.0.0.1",
    "127.1",
    "127.0.0.01",
    "0x7f.1",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
  ])("%s is loopback", (host) => expect(isLoopback(host)).toBe(true));
  it.each([
    "0.0.0.0",
    "::",
    "10.0.0.1",
    "128.0.0.1",
    "::ffff:10.0.0.1",
    "evil.example",
    "localhost.evil.example",
    "",
  ])("%s is not", (host) => expect(isLoopback(host)).toBe(false));
});
