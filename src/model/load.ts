// The model's edge: reads the declaration file and looks at the files it names, through the
// System (src/process/system.ts), then hands both to the pure build (src/model/build.ts). A fake
// System gives the build a fake file tree.

import { buildModel, type FileProbe } from './build.js';
import type { Model } from './instance.js';
import type { Declaration } from '../declaration/declaration.js';
import { readDeclaration } from '../declaration/reader.js';
import { errnoCode, NotConfiguredError } from '../errors.js';
import { DECLARATION_MAX_BYTES, UnsafeFileError, type System } from '../process/system.js';

/** `--conf`, else $PHP_FPM_MULTI_CONF, else the conf.d file OpenRC reads for the service. */
export function resolveConfPath(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return option ?? env['PHP_FPM_MULTI_CONF'] ?? `${env['EPREFIX'] ?? ''}/etc/conf.d/php-fpm`;
}

/**
 * The model's FileProbe over the System. The build is pure and synchronous and asks while it
 * derives each instance, so the probe uses the System's synchronous lookups (System.sync);
 * every failure (missing, unreadable) is a plain "no", which the build reports as a problem.
 */
export function probeFilesOf(system: System): FileProbe {
  const isFile = (file: string): boolean => {
    try {
      return system.sync.stat(file).kind === 'file';
    } catch {
      return false;
    }
  };
  return {
    isFile,
    listDirectory(dir) {
      try {
        return system.sync.readdir(dir);
      } catch {
        return [];
      }
    },
    isExecutable: (file) => system.sync.isExecutable(file) && isFile(file),
  };
}

/**
 * The declaration's bytes: a regular file (a symlink to one is followed) of at most
 * DECLARATION_MAX_BYTES. A FIFO would hang the read and /dev/zero fill memory: refused before.
 */
function readConf(system: System, conf: string): Buffer {
  try {
    return system.sync.readFileBytes(conf, { maxBytes: DECLARATION_MAX_BYTES });
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
    const code = errnoCode(error);
    if (code === 'ENOENT') {
      throw new NotConfiguredError(
        `${conf}: no such file; copy the example (conf.d/php-fpm of php-fpm-multi) there, or name another file with --conf FILE or $PHP_FPM_MULTI_CONF`,
      );
    }
    if (code === 'EACCES' || code === 'EPERM') throw new NotConfiguredError(`${conf}: cannot be read (${code}); check its permissions`);
    // EAGAIN (/proc/kmsg, nothing to read now), EIO, EINVAL…: no permission would help.
    throw new NotConfiguredError(
      `${conf}: cannot be read as a declaration file (${code ?? String(error)}): it is not a regular file that can be read to its end (a /proc or device file?); check that --conf or $PHP_FPM_MULTI_CONF names the declaration file`,
    );
  }
}

/**
 * Reads the declaration file (never executing it) and builds the instance model. `runDirUid`
 * chooses the default run directory (root's or the caller's, see src/process/declaration.ts).
 */
export function loadModel(system: System, conf: string, env: Readonly<Record<string, string | undefined>>, runDirUid: number = system.uid): Model {
  return buildModel(loadDeclaration(system, conf, env), { env, uid: runDirUid, probe: probeFilesOf(system) });
}

/** The declaration file read as bash would hold it (never executed), before any model is built. */
export function loadDeclaration(system: System, conf: string, env: Readonly<Record<string, string | undefined>>): Declaration {
  return readDeclaration(readConf(system, conf), { file: conf, env });
}

/**
 * Whose default run directory a declaration file uses: root's when root owns the file (the
 * service's file in /etc/conf.d), so that an ordinary user (a monitoring agent) looks where root
 * keeps its records and pidfiles, not in its own $XDG_RUNTIME_DIR; else the caller's own. Every
 * command chooses it so (list and check too: they show and check the same pidfiles as status).
 */
export function chooseRunDirUid(system: System, conf: string): number {
  const uid = system.uid;
  if (uid === 0) return 0;
  try {
    return system.sync.stat(conf).uid === 0 ? 0 : uid;
  } catch {
    return uid; // missing or unreachable: the caller's own default, and the file's problem is reported
  }
}
