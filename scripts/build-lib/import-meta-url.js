// Injected by scripts/build.mjs into the CommonJS bundle, which has no import.meta: the bundle's
// own URL, for src/cli.ts's entry-point check.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
