// Before a reload's signal and a restart's stop: can php-fpm rewrite its pidfile, and the
// controller its record and launch intent? php-fpm rewrites its pidfile on every (re)start and
// exits when it cannot ("Unable to create the PID file … Read-only file system"): a reload on a
// read-only or full run directory would take a serving instance down, a restart would stop it and
// fail to start it. So a small file with content is written and removed first: on a full tmpfs an
// empty file can still be created (an inode is left) where writing a single byte fails.
import { posix as path } from 'node:path';
import { describeErrno } from '../errors.js';
import { errnoCode, type System } from './system.js';

/** About what a record holds: a write of it needs a data block, as php-fpm's pid does. */
const PROBE_CONTENT = `${'0'.repeat(255)}\n`;
const PROBE_MODE = 0o600;

/** null when a file with content can be written (and was removed) in `dir`; else why not. */
export async function probeWritable(system: System, dir: string): Promise<{ code: string; words: string } | null> {
  const file = path.join(dir, `.php-fpm-multi-probe-${system.pid}`);
  try {
    await system.writeFileAtomic(file, PROBE_CONTENT, PROBE_MODE);
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined) throw error;
    return { code, words: describeErrno(error) };
  }
  try {
    await system.unlink(file);
  } catch {
    // written, so the directory is writable; a leftover probe is harmless (it is a dot file)
  }
  return null;
}

export function describeFix(code: string, dir: string): string {
  if (code === 'EROFS') return `remount the file system of ${dir} read-write`;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `free space in ${dir}`;
  return `make ${dir} writable by root`;
}

/**
 * Why php-fpm (its pidfile's directory) or the controller (the run directory: record, launch
 * intent) could not write what a reload or restart rewrites; null when both can.
 */
export async function describeUnwritable(system: System, pidfile: string, runDir: string): Promise<string | null> {
  const pidDir = path.dirname(pidfile);
  const checks: Array<[string, string]> = [[pidDir, `php-fpm could not rewrite its pidfile in ${pidDir}`]];
  if (pidDir !== runDir) checks.push([runDir, `php-fpm-multi could not rewrite its record in ${runDir}`]);
  for (const [dir, what] of checks) {
    const failure = await probeWritable(system, dir);
    if (failure !== null) return `${what}: ${failure.words}; ${describeFix(failure.code, dir)}, then run the command again`;
  }
  return null;
}
