// The controller's own modules, one file each, for tests whose child processes import them (dist/
// is one bundle: scripts/build.mjs). esbuild compiles each entry of src/ with what it imports into
// DIR/<same path>.mjs (shared modules in chunks), as tsc did into dist/ before the bundle.
import { buildSync } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SRC = join(import.meta.dirname, '..', '..', 'src');

/** Compiles `entries` (paths under src/, e.g. 'process/system.ts') into a new scratch directory, returned. */
export function buildModules(entries: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'php-fpm-multi-modules-'));
  buildSync({
    entryPoints: entries.map((entry) => join(SRC, entry)),
    outbase: SRC,
    outdir: dir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Shared modules in shared chunks: one class RefusedFileError for system.ts and load.ts alike,
    // so that instanceof holds across entries.
    splitting: true,
    outExtension: { '.js': '.mjs' },
    logLevel: 'error',
  });
  return dir;
}
