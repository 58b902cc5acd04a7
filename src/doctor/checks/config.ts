/** The config file loads and validates (every later check needs it). */
import { type Check, fail, ok } from "../types.ts";

/** A ConfigError's text on one line, without repeating the file name it starts with. */
function oneLine(path: string, text: string): string {
  return text
    .split(`${path}: `)
    .join("")
    .replace(/^\d+ problems?:\s*/, "")
    .split(/\s*\n\s*/)
    .filter(Boolean)
    .join("; ");
}

export const configCheck: Check = (ctx) => {
  if (!ctx.config) {
    return [
      fail(
        "config",
        `${ctx.configPath}: ${oneLine(ctx.configPath, ctx.configProblem ?? "not loaded")}`,
        `fix the file (fieldrelay check-config -c ${ctx.configPath} lists every problem)`,
      ),
    ];
  }
  const sensors = ctx.config.sensor.length;
  return [
    ok(
      "config",
      `${ctx.configPath} is valid (device ${ctx.config.device.id}, ${sensors} sensor${sensors === 1 ? "" : "s"})`,
    ),
  ];
};
