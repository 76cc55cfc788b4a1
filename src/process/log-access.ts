// Opening an instance's error_log for `logs` (run as root, it prints what it reads): never a file
// that a user other than root, the controller or the instance's own user could have put at that
// path. A user who may write a directory of the path (a `user=` instance's log directory) could
// otherwise make root print /etc/shadow by a symlink, a renamed directory or a hard link.
//
// The rule, the smallest that closes "a non-root user makes root print a file it cannot read":
// - the last component is opened with O_NOFOLLOW (a symlink there is refused, never followed);
// and, when the controller is root (any other reads only what the kernel lets it read anyway):
// - the opened file (fstat) is a regular file owned by root, the controller or the instance's user;
// - every directory and symlink of the path, walked from / component by component, is owned by
//   root or the controller, or (only when the file is the instance user's own: whatever that user
//   swaps in is theirs to read anyway) by that user; and no directory is writable by group or
//   others without the sticky bit (a sticky one lets others add entries, not rename ours);
// - the walk ends at the very file that was opened (same device and inode): a swap between the
//   open and the walk is refused, not believed.
// Every reopen of `logs -f` goes through here again.
import { posix } from 'node:path';
import { errnoCode } from '../errors.js';
import { UnsafeFileError, type FileStat, type ReadableFile, type System } from './system.js';
import { walkDirectories } from './path-walk.js';

const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;

/** Who may own a log and its path: root, the controller, and the `user=` accounts of the instances writing it. */
export interface LogOwners {
  controllerUid: number;
  userUids: readonly number[];
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

function untrusted(path: string, problem: string): UnsafeFileError {
  return new UnsafeFileError(path, 'untrusted', problem);
}

function describeOwners(uids: readonly number[]): string {
  return uids.map((uid) => (uid === 0 ? 'root' : `uid ${uid}`)).join(' or ');
}

/** Walks `dir` from / as the kernel resolves it, checking every symlink and directory met; returns the real directory. */
async function checkDirectories(system: Pick<System, 'lstat' | 'readlink'>, log: string, dir: string, owners: readonly number[], linkOwners: readonly number[]): Promise<string> {
  const check = (at: string, stat: FileStat): void => {
    const allowed = stat.kind === 'symlink' ? linkOwners : owners;
    if (!allowed.includes(stat.uid)) {
      throw untrusted(log, `is reached through ${at}, a ${stat.kind === 'symlink' ? 'symlink' : 'directory'} owned by uid ${stat.uid}, not ${describeOwners(allowed)}: its owner could put any file there`);
    }
    if (stat.kind === 'directory' && (stat.mode & WRITABLE_BY_OTHERS) !== 0 && (stat.mode & STICKY) === 0) {
      throw untrusted(log, `lies below ${at}, writable by group or others without the sticky bit (mode ${octal(stat.mode)}): anyone who can write it could put any file there`);
    }
  };
  // No `missing`: a component gone since the open rejects with ENOENT ("was replaced", below).
  const real = await walkDirectories(system, dir, {
    check,
    loop: () => untrusted(log, 'has a symlink loop in its directories'),
    notDirectory: (path) => untrusted(log, `is reached through ${path}, which is not a directory`),
  });
  return real ?? dir;
}

/**
 * Opens `path` for reading if the rule above holds; rejects with UnsafeFileError (reason
 * `untrusted` or `not-regular`, the path and why in its message) otherwise, the file closed.
 * errno errors (ENOENT, EACCES) pass through.
 */
export async function openLog(system: Pick<System, 'openReadable' | 'lstat' | 'readlink'>, path: string, owners: LogOwners): Promise<ReadableFile> {
  if (!posix.isAbsolute(path)) throw untrusted(path, 'is a relative path');
  let file: ReadableFile;
  try {
    file = await system.openReadable(path);
  } catch (error) {
    if (errnoCode(error) === 'ELOOP') throw untrusted(path, 'is a symlink: logs never follows one (its owner could point it at any file)');
    throw error;
  }
  // A controller that is not root reads only what the kernel lets it read anyway: nothing to disclose.
  if (owners.controllerUid !== 0) return file;
  try {
    const opened = await file.stat();
    const trusted = [...new Set([0, owners.controllerUid])];
    const fileOwners = [...new Set([...trusted, ...owners.userUids])];
    if (!fileOwners.includes(opened.uid)) throw untrusted(path, `is owned by uid ${opened.uid}, not ${describeOwners(fileOwners)}`);
    // The user's own file: that user may own its directories too. Root's file: only root's path.
    const dirOwners = trusted.includes(opened.uid) ? trusted : [...trusted, opened.uid];
    const real = await checkDirectories(system, path, posix.dirname(posix.normalize(path)), dirOwners, trusted);
    const now = await system.lstat(posix.join(real, posix.basename(path)));
    if (now.dev !== opened.dev || now.ino !== opened.ino) throw untrusted(path, 'was replaced while its directories were being checked');
    return file;
  } catch (error) {
    await file.close();
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') throw untrusted(path, 'was replaced while its directories were being checked');
    throw error;
  }
}
