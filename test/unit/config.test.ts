import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactConfig } from "../../src/config/index.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fr-config-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(text: string): string {
  const path = join(dir, "config.toml");
  writeFileSync(path, text);
  return path;
}

function problems(text: string, env: Record<string, string> = {}): Array<{ path: string; message: string }> {
  try {
    loadConfig({ path: write(text), env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("config was accepted");
}

describe("Config loading", () => {
  it("fills defaults for everything a first run needs", () => {
    const config = loadConfig({ path: write('[device]\nid = "pi-1"\n'), env: {} });
    expect(config.mqtt.url).toBe("mqtt://127.0.0.1:1883");
    expect(config.mqtt.topic_prefix).toBe("fieldrelay");
    expect(config.queue).toMatchObject({
      path: "/var/lib/fieldrelay/queue.db",
      durability: "full",
      commit_interval_ms: 1000,
      protected_priority: 9,
    });
    expect(config.ingest.listen).toBe("127.0.0.1:9107");
    expect(config.health.listen).toBe("127.0.0.1:9108");
    expect(config.clock.sync_source).toBe("adjtimex");
    expect(config.rtc.mode).toBe("auto");
    expect(config.system.root).toBe("/");
    expect(config.sensor).toEqual([]);
  });

  it("applies FIELDRELAY_<SECTION>_<KEY> overrides with the schema's types, nested tables included", () => {
    const config = loadConfig({
      path: write('[device]\nid = "pi-1"\n[mqtt]\nurl = "mqtt://a:1883"\n'),
      env: {
        FIELDRELAY_MQTT_URL: "mqtts://b:8883",
        FIELDRELAY_MQTT_PASSWORD: "s3cret",
        FIELDRELAY_MQTT_MAX_INFLIGHT: "8",
        FIELDRELAY_MQTT_PROTOCOL_VERSION: "5",
        FIELDRELAY_MQTT_TLS_INSECURE: "true",
        FIELDRELAY_MQTT_TLS_ALPN: "mqtt,x-amzn-mqtt-ca",
        FIELDRELAY_QUEUE_COMMIT_INTERVAL_MS: "0",
        FIELDRELAY_SHUTDOWN_TIMEOUT_S: "5",
        FIELDRELAY_DEVICE_ID: "pi-2",
      },
    });
    expect(config.mqtt).toMatchObject({
      url: "mqtts://b:8883",
      password: "s3cret",
      max_inflight: 8,
      protocol_version: 5,
    });
    expect(config.mqtt.tls).toMatchObject({ insecure: true, alpn: ["mqtt", "x-amzn-mqtt-ca"] });
    expect(config.queue.commit_interval_ms).toBe(0);
    expect(config.shutdown_timeout_s).toBe(5);
    expect(config.device.id).toBe("pi-2");
  });

  it("keeps a numeric-looking password a string", () => {
    const config = loadConfig({
      path: write('[device]\nid = "pi-1"\n'),
      env: { FIELDRELAY_MQTT_PASSWORD: "12345" },
    });
    expect(config.mqtt.password).toBe("12345");
  });

  it("redacts passwords, tokens and URL credentials", () => {
    const config = loadConfig({
      path: write(
        '[device]\nid = "pi-1"\n[mqtt]\nurl = "mqtt://u:pw@h:1883"\n[health]\ntoken = "0123456789abcdef0123"\n',
      ),
      env: { FIELDRELAY_MQTT_PASSWORD: "hunter2" },
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain("0123456789abcdef0123");
    expect(shown).not.toContain(":pw@");
    expect(config.mqtt.password).toBe("hunter2");
  });
});

describe("Config errors", () => {
  it("names a missing file and how to fix it", () => {
    expect(() => loadConfig({ path: join(dir, "absent.toml"), env: {} })).toThrow(
      /not found \(ENOENT\).*--config PATH/,
    );
  });

  it("names a directory given as the file", () => {
    expect(() => loadConfig({ path: dir, env: {} })).toThrow(/EISDIR/);
  });

  it("reports invalid TOML with line and column", () => {
    const [p] = problems('[device]\nid = "a"\nbroken = \n');
    expect(p!.message).toMatch(/invalid TOML: .*line 3, column \d+/);
    expect(p!.path).toMatch(/config\.toml:3:\d+$/);
  });

  it("rejects unknown keys with a did-you-mean", () => {
    const found = problems('[device]\nid = "a"\n[mqtt]\ntopic_prefx = "x"\n[queu]\n');
    expect(found).toContainEqual(
      expect.objectContaining({
        path: "mqtt.topic_prefx",
        message: expect.stringContaining('did you mean "topic_prefix"'),
      }),
    );
    expect(found).toContainEqual(
      expect.objectContaining({ path: "queu", message: expect.stringContaining('did you mean "queue"') }),
    );
  });

  it("rejects unknown environment overrides with a did-you-mean", () => {
    const found = problems('[device]\nid = "a"\n', { FIELDRELAY_MQTT_USRNAME: "x" });
    expect(found).toEqual([
      {
        path: "env FIELDRELAY_MQTT_USRNAME",
        message: expect.stringContaining("did you mean FIELDRELAY_MQTT_USERNAME"),
      },
    ]);
  });

  it("reports wrong types with what was found", () => {
    const found = problems(
      '[device]\nid = "a"\n[mqtt]\nmax_inflight = "lots"\n[commands]\nenabled = "yes"\n',
    );
    expect(found).toContainEqual({
      path: "mqtt.max_inflight",
      message: 'expected number, got string "lots"',
    });
    expect(found).toContainEqual({ path: "commands.enabled", message: 'expected boolean, got string "yes"' });
  });

  it("reports out-of-range numbers with the bound and the value", () => {
    const found = problems(
      '[device]\nid = "a"\n[queue]\ncommit_interval_ms = -5\nprotected_priority = 40\n[mqtt]\nmax_inflight = 0\n',
    );
    expect(found.map((p) => p.path).sort()).toEqual([
      "mqtt.max_inflight",
      "queue.commit_interval_ms",
      "queue.protected_priority",
    ]);
    expect(found.find((p) => p.path === "queue.commit_interval_ms")!.message).toMatch(/>=0, got -5/);
  });

  it.each([
    ["pi/1", "'/'"],
    ["pi+1", "'+'"],
    ["pi#", "'#'"],
    ["pi\\u00001", "NUL"],
  ])("rejects device id %s (contains %s)", (id, shown) => {
    const [p] = problems(`[device]\nid = "${id}"\n`);
    expect(p!.path).toBe("device.id");
    expect(p!.message).toContain(`found ${shown}`);
  });

  it("requires a device id", () => {
    expect(problems("[mqtt]\n")).toContainEqual({ path: "device", message: "required: expected object" });
  });

  it("refuses the MQTT password in the file", () => {
    expect(problems('[device]\nid = "a"\n[mqtt]\npassword = "x"\n')[0]!.message).toMatch(
      /FIELDRELAY_MQTT_PASSWORD/,
    );
  });

  it("validates URL schemes, listen addresses and the backoff pair", () => {
    const found = problems(
      '[device]\nid = "a"\n[mqtt]\nurl = "http://x"\nmin_backoff_s = 10\nmax_backoff_s = 5\n[health]\nlisten = "0.0.0.0:99999"\n',
    );
    expect(found.map((p) => p.path).sort()).toEqual(["health.listen", "mqtt.min_backoff_s", "mqtt.url"]);
  });

  it("checks sensor tables by their driver's schema, all problems at once", () => {
    const found = problems(
      '[device]\nid = "a/b"\n[[sensor]]\nname = "s"\ndriver = "simulatd"\n[[sensor]]\nname = "t"\ndriver = "simulated"\nprofil = "camera"\n[[sensor]]\nname = "t"\ndriver = "simulated"\n',
    );
    expect(found).toContainEqual(expect.objectContaining({ path: "device.id" }));
    expect(found).toContainEqual(
      expect.objectContaining({
        path: "sensor[0].driver",
        message: expect.stringContaining('did you mean "simulated"'),
      }),
    );
    expect(found).toContainEqual(
      expect.objectContaining({
        path: "sensor[1].profil",
        message: expect.stringContaining('did you mean "profile"'),
      }),
    );
    expect(found).toContainEqual(
      expect.objectContaining({
        path: "sensor[2].name",
        message: expect.stringContaining("already used by sensor[1]"),
      }),
    );
  });
});
