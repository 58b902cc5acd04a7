/**
 * Vitest (through Vite) ignores `with { type: "text" }` and would run an imported .js file or
 * inject an imported .css file. src/health/page/assets.ts embeds the status page's files as
 * text, the way Bun and `bun build --compile` do; this plugin gives Vitest the same: every import
 * made by that module resolves to a virtual module whose default export is the file's text.
 */
import { readFileSync } from "node:fs";
import type { Plugin } from "vite";

const TEXT_IMPORTER = /\/src\/health\/page\/assets\.ts$/;
const PREFIX = "virtual:fieldrelay-text:";

export function textAssets(): Plugin {
  return {
    name: "fieldrelay-text-assets",
    enforce: "pre",
    async resolveId(source, importer) {
      if (!importer || !TEXT_IMPORTER.test(importer.split("?")[0]!)) return null;
      const resolved = await this.resolve(source, importer, { skipSelf: true });
      return resolved ? PREFIX + resolved.id.split("?")[0] : null;
    },
    load(id) {
      if (!id.startsWith(PREFIX)) return null;
      return `export default ${JSON.stringify(readFileSync(id.slice(PREFIX.length), "utf8"))};`;
    },
  };
}
