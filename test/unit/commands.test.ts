import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { type CommandContext, handleCommand } from "../../src/commands/index.ts";
import { FieldrelayError } from "../../src/errors/index.ts";
import { createLogger } from "../../src/log/index.ts";

function context(over: Partial<CommandContext> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const flushed: number[] = [];
  const ctx: CommandContext = {
    maxPayloadBytes: 64,
    log: createLogger({ destination, level: "debug" }),
    health: () => ({ status: "healthy", checks: {} }),
    sample: async (sensor) => {
      if (sensor !== "bme")
        throw new FieldrelayError(`no sensor named "${sensor}"`, { hint: "see [[sensor]] names" });
      return { stream: "env", values: { temperature_c: 21.5 } };
    },
    flush: async () => {
      flushed.push(1);
      return { committed: 3 };
    },
    ...over,
  };
  return { ctx, lines, flushed };
}
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("handleCommand", () => {
  it("answers ping and echoes a string or numeric id", async () => {
    const { ctx } = context();
    expect(await handleCommand("ping", json({ id: "r1" }), ctx)).toEqual({
      id: "r1",
      command: "ping",
      ok: true,
      result: { pong: true },
    });
    expect(await handleCommand("ping", json({ id: 7 }), ctx)).toMatchObject({ id: 7, ok: true });
    expect(await handleCommand("ping", Buffer.alloc(0), ctx)).toEqual({
      command: "ping",
      ok: true,
      result: { pong: true },
    });
  });

  it("answers status with the health body", async () => {
    const { ctx } = context();
    expect(await handleCommand("status", Buffer.alloc(0), ctx)).toMatchObject({
      ok: true,
      result: { status: "healthy" },
    });
  });

  it("samples a named sensor, and refuses a missing or unknown name", async () => {
    const { ctx } = context();
    expect(await handleCommand("sample", json({ id: "s", sensor: "bme" }), ctx)).toEqual({
      id: "s",
      command: "sample",
      ok: true,
      result: { stream: "env", values: { temperature_c: 21.5 } },
    });
    expect(await handleCommand("sample", json({ id: "s" }), ctx)).toMatchObject({
      id: "s",
      ok: false,
      error: { code: "bad_request" },
    });
    expect(await handleCommand("sample", json({ sensor: "nope" }), ctx)).toEqual({
      command: "sample",
      ok: false,
      error: { code: "failed", message: 'no sensor named "nope" — see [[sensor]] names' },
    });
  });

  it("flushes through the context", async () => {
    const { ctx, flushed } = context();
    expect(await handleCommand("flush", Buffer.alloc(0), ctx)).toMatchObject({
      ok: true,
      result: { committed: 3 },
    });
    expect(flushed).toEqual([1]);
  });

  it.each([
    [
      "unknown command",
      "reboot",
      json({ id: 1 }),
      "unknown_command",
      /unknown command "reboot"; known: ping, status, sample, flush/,
    ],
    ["malformed JSON", "ping", Buffer.from("{id: 1"), "malformed_json", /payload is not JSON/],
    ["a JSON array", "ping", Buffer.from("[1,2]"), "malformed_json", /must be a JSON object/],
    [
      "an oversized payload",
      "ping",
      Buffer.alloc(65, 0x20),
      "payload_too_large",
      /65 bytes; commands.max_payload_bytes is 64/,
    ],
    ["a prototype name", "constructor", Buffer.alloc(0), "unknown_command", /unknown command/],
  ])(
    "turns %s into an error reply and a log line, never a throw",
    async (_, name, payload, code, message) => {
      const { ctx, lines } = context();
      const reply = await handleCommand(name, payload, ctx);
      expect(reply).toMatchObject({
        command: name,
        ok: false,
        error: { code, message: expect.stringMatching(message) },
      });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: "warn", command: name, code });
    },
  );

  it("turns a throwing action into a failed reply", async () => {
    const { ctx } = context({
      flush: async () => {
        throw new Error("SQLITE_IOERR");
      },
    });
    expect(await handleCommand("flush", Buffer.alloc(0), ctx)).toMatchObject({
      ok: false,
      error: { code: "failed", message: "SQLITE_IOERR" },
    });
  });
});
