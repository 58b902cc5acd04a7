/**
 * The status page's files, embedded as text. Bun (and `bun build --compile`, which inlines them
 * into the executable) reads `with { type: "text" }`; under Vitest the plugin in
 * test/support/text-assets.ts does the same for every import of this module — so import nothing
 * else here.
 */

import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import app from "./client/app.js" with { type: "text" };
import pageCss from "./client/page.css" with { type: "text" };

export const ASSETS = { app, pageCss, uplotCss, uplotJs };
