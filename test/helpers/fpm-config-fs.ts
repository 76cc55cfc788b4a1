// The php-fpm config parser over node:fs, synchronously, for tests that read real files and
// assert with toThrow. The controller itself reads through the one System (readFpmConfig in
// src/php-fpm/config/load.ts); this reader uses the same bounded, regular-files-only read
// (src/process/files.ts) and turns its refusals into the parser's errors the same way.
import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { CONFIG_FILE_LIMITS, refusedFile } from '../../src/php-fpm/config/load.js';
import { globSteps, type DirectoryAnswer, type DirectoryQuestion } from '../../src/php-fpm/config/glob.js';
import { parseFpmConfig } from '../../src/php-fpm/config/parse.js';
import { runSteps } from '../../src/php-fpm/config/steps.js';
import type { FpmConfig, FpmConfigOptions, FpmConfigReader } from '../../src/php-fpm/config/types.js';
import { readRegularFile } from '../../src/process/files.js';

function kindOf(stats: Stats): string {
  return stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : 'other';
}

function answerFromFs(question: DirectoryQuestion): DirectoryAnswer {
  switch (question.kind) {
    case 'list': return readdirSync(question.directory);
    case 'stat': return kindOf(statSync(question.path));
    case 'lstat': return kindOf(lstatSync(question.path));
    default: throw new TypeError(`unknown question ${JSON.stringify(question satisfies never)}`);
  }
}

/** glob(3) as php-fpm calls it, over node:fs, synchronously. */
export function globFs(pattern: string): string[] {
  return runSteps(globSteps(pattern), answerFromFs);
}

/** The synchronous reader over node:fs. */
export const fsConfigReader: FpmConfigReader = {
  readFile(path) {
    try {
      return readRegularFile(path, CONFIG_FILE_LIMITS);
    } catch (error) {
      throw refusedFile(error);
    }
  },
  glob: globFs,
};

export type LoadFpmConfigOptions = Omit<FpmConfigOptions, 'reader'> & { reader?: FpmConfigReader };

/** parseFpmConfig over the real filesystem; `env` defaults to this process's environment. */
export function loadFpmConfig(path: string, options: LoadFpmConfigOptions = {}): FpmConfig {
  return parseFpmConfig(path, { ...options, reader: options.reader ?? fsConfigReader, env: options.env ?? process.env });
}
