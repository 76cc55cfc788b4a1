#!/usr/bin/env node
// Builds the controller: src/ bundled by esbuild into ONE executable file, dist/cli.js, with its
// run-time npm dependencies (minimist, shell-quote) inside, so that an install copies one file and
// no node_modules. tsc does not emit: it is the type-checker (npm run typecheck, scripts/test).
//
//   node scripts/build.mjs [--format cjs|esm] [--sourcemap] [--outfile FILE]
//
// Why one CommonJS file: Node 20 starts it faster than an ES module (its ESM loader costs about
// 5 ms more per run, docs/BENCHMARKS.md "One file"). The commands are still loaded lazily: without
// code splitting, esbuild turns each `await import()` of a bundled module into a wrapper whose
// module body runs on first use, so `status` never evaluates the php-fpm config parser or the
// FastCGI client.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    format: { type: 'string', default: 'cjs' },
    sourcemap: { type: 'boolean', default: false },
    minify: { type: 'boolean', default: false },
    outfile: { type: 'string', default: join(ROOT, 'dist', 'cli.js') },
  },
});
const format = values.format;
if (format !== 'cjs' && format !== 'esm') throw new Error(`--format must be cjs or esm, not ${format}`);
const outfile = values.outfile;
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

// dist/ holds the bundle only: nothing left over from tsc's per-module output.
if (outfile === join(ROOT, 'dist', 'cli.js')) rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
mkdirSync(dirname(outfile), { recursive: true });

/** `import('node:x')` → a module whose body is `module.exports = require('node:x')`, run on first use. */
const lazyRequireOfBuiltins = {
  name: 'lazy-require-of-builtins',
  setup(builder) {
    builder.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'lazy-builtin' } : undefined));
    builder.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

await build({
  entryPoints: [join(ROOT, 'src', 'cli.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format,
  // CommonJS has no import.meta: src/cli.ts compares it with process.argv[1] to know it is the
  // entry point, so it becomes this file's own URL.
  ...(format === 'cjs'
    ? { define: { 'import.meta.url': 'importMetaUrl', PHP_FPM_MULTI_VERSION: JSON.stringify(version) }, inject: [join(ROOT, 'scripts', 'build-lib', 'import-meta-url.js')] }
    : { define: { PHP_FPM_MULTI_VERSION: JSON.stringify(version) } }),
  // In CommonJS, a builtin imported dynamically (`await import('node:crypto')`, loaded on first
  // use) becomes a lazy require(): V8 code cache drops the dynamic-import callback of a script
  // (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING from the cached controller), require has none.
  plugins: format === 'cjs' ? [lazyRequireOfBuiltins] : [],
  sourcemap: values.sourcemap ? 'inline' : false,
  // Line 2 of the file: scripts/install.sh recognises an installed controller by it.
  banner: { js: `// php-fpm-multi ${version}: the controller in one file (scripts/build.mjs, esbuild)` },
  legalComments: 'none',
  // Whitespace and syntax only: identifiers keep their names, for stack traces in bug reports.
  minifyWhitespace: values.minify,
  minifySyntax: values.minify,
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
// The repository's package.json says "type": "module" (src/ is ESM), which would make node read
// dist/cli.js as an ES module: this one says what the bundle is.
if (outfile === join(ROOT, 'dist', 'cli.js')) writeFileSync(join(ROOT, 'dist', 'package.json'), `${JSON.stringify({ type: format === 'cjs' ? 'commonjs' : 'module' })}\n`);
