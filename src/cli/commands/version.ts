import type { Command } from "commander";
import { buildInfo } from "../build-info.ts";
import type { Io } from "../io.ts";

export function versionCommand(program: Command, io: Io): void {
  program
    .command("version")
    .description("print version, git commit, build target and Bun version")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }) => {
      const info = buildInfo();
      io.out(
        opts.json
          ? JSON.stringify(info)
          : `fieldrelay ${info.version} (commit ${info.commit}, target ${info.target}, bun ${info.bun})`,
      );
    });
}
