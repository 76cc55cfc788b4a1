// Walks a directory path from / component by component, as the kernel resolves it (following
// each symlink met, `..` from the real directory reached), so that every directory and symlink on
// the way can be checked: a trust check of only the path as written would miss a symlink planted
// by its owner. Shared by the pidfile and run-directory trust (src/process/pidfile.ts) and `logs`
// (src/process/log-access.ts); each brings its own rule and its own words.
import { posix } from 'node:path';
import { errnoCode } from '../errors.js';
import type { FileStat, System } from './system.js';

/** As the kernel's limit (MAXSYMLINKS): beyond it, a loop. */
export const MAX_SYMLINKS_FOLLOWED = 40;

export interface PathWalk {
  /** Checks a directory or symlink met (before a symlink is followed); throws to refuse. */
  check(path: string, stat: FileStat): void;
  /**
   * A component that does not exist: its stat once made, or null to end the walk (it returns
   * null). Absent: lstat's ENOENT rejects the walk.
   */
  missing?(path: string): Promise<FileStat | null>;
  /** The error for more than MAX_SYMLINKS_FOLLOWED symlinks. */
  loop(): Error;
  /** The error for a component that is neither a directory nor a symlink. */
  notDirectory(path: string): Error;
}

/** The real directory `dir` resolves to, every entry on the way checked; null when `missing` ended the walk. */
export async function walkDirectories(system: Pick<System, 'lstat' | 'readlink'>, dir: string, walk: PathWalk): Promise<string | null> {
  let current = '/';
  walk.check('/', await system.lstat('/'));
  const pending = dir.split('/').filter((c) => c !== '' && c !== '.');
  let symlinksFollowed = 0;
  for (let component = pending.shift(); component !== undefined; component = pending.shift()) {
    if (component === '..') {
      current = posix.dirname(current); // `current` is a real, already checked directory
      continue;
    }
    const next = posix.join(current, component);
    const stat = walk.missing === undefined ? await system.lstat(next) : await lstatOrMissing(system, next, walk.missing);
    if (stat === null) return null;
    if (stat.kind === 'symlink') {
      walk.check(next, stat);
      symlinksFollowed += 1;
      if (symlinksFollowed > MAX_SYMLINKS_FOLLOWED) throw walk.loop();
      const target = await system.readlink(next);
      pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
      if (target.startsWith('/')) current = '/';
      continue;
    }
    if (stat.kind !== 'directory') throw walk.notDirectory(next);
    walk.check(next, stat);
    current = next;
  }
  return current;
}

async function lstatOrMissing(system: Pick<System, 'lstat'>, path: string, missing: (path: string) => Promise<FileStat | null>): Promise<FileStat | null> {
  try {
    return await system.lstat(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    return missing(path);
  }
}
