import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { NotConfiguredError } from '../errors.js';
import { buildModel, type FileProbe } from './build.js';
import type { Model } from './instance.js';
import { readDeclaration } from '../declaration/reader.js';
import { DECLARATION_MAX_BYTES, readRegularFileBytes, UnsafeFileError } from '../process/system.js';

/** `--conf`, else $PHP_FPM_MULTI_CONF, else the conf.d file OpenRC reads for the service. */
export function resolveConfPath(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return option ?? env['PHP_FPM_MULTI_CONF'] ?? `${env['EPREFIX'] ?? ''}/etc/conf.d/php-fpm`;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export const realFileProbe: FileProbe = {
  isFile,
  listDirectory(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  isExecutable(file) {
    try {
      accessSync(file, constants.X_OK);
      return isFile(file);
    } catch {
      return false;
    }
  },
};

/**
 * The declaration's bytes: a regular file (a symlink to one is followed) of at most
 * DECLARATION_MAX_BYTES. A FIFO would hang the read and /dev/zero fill memory: refused before.
 */
function readConf(conf: string): Buffer {
  try {
    return readRegularFileBytes(conf, { maxBytes: DECLARATION_MAX_BYTES });
  } catch (error) {
    if (error instanceof UnsafeFileError && error.reason === 'not-regular') {
      throw new NotConfiguredError(
        `${error.message}: php-fpm-multi reads the declaration only from a regular file (a symlink to one is fine); name the declaration file with --conf FILE or $PHP_FPM_MULTI_CONF`,
      );
    }
    if (error instanceof UnsafeFileError) {
      throw new NotConfiguredError(
        `${error.message} for a declaration file; a thousand instances take about 100 KiB: check that --conf or $PHP_FPM_MULTI_CONF names the declaration file, or split it into one file per service (/etc/conf.d/php-fpm.NAME)`,
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NotConfiguredError(
        `${conf}: no such file; copy the example (conf.d/php-fpm of php-fpm-multi) there, or name another file with --conf FILE or $PHP_FPM_MULTI_CONF`,
      );
    }
    throw new NotConfiguredError(`${conf}: cannot be read (${code ?? String(error)}); check its permissions`);
  }
}

/** Reads the declaration file (never executing it) and builds the instance model. */
export function loadModel(conf: string, env: Readonly<Record<string, string | undefined>>, uid: number): Model {
  const declaration = readDeclaration(readConf(conf), { file: conf, env });
  return buildModel(declaration, { env, uid, probe: realFileProbe });
}
