// Pidfiles and run directories: what we read from them and when we believe it.
//
// A pidfile is a claim "process N is this instance's master" written by whoever can write that
// path. The controller runs as root and signals the process the pidfile names, so a pidfile that
// an unprivileged user can write (or swap for a symlink) would let that user aim root's signals.
// Identity verification (src/process/proc.ts) already refuses to signal anything that is not this
// instance's master; the trust check below is the second, independent line: it also keeps root
// from following a planted symlink when php-fpm (as root) creates the pidfile.

import { posix } from 'node:path';
import { FpmMultiError } from '../errors.js';
import { errnoCode, PIDFILE_MAX_BYTES, UnsafeFileError, type FileStat, type System } from './system.js';
import { walkDirectories } from './path-walk.js';

/**
 * The largest pid Linux can ever hand out (PID_MAX_LIMIT on 64-bit, 2^22). The running
 * system's /proc/sys/kernel/pid_max may be lower, but it can be raised at any time, so a pidfile
 * is only rejected for a value no kernel could have written.
 */
export const PID_MAX_LIMIT = 4_194_304;
/** Mode of the run directory we create: root writes, everyone may look (as /run itself). */
export const RUN_DIRECTORY_MODE = 0o755;
/** How much of a bad pidfile's content an error message quotes. */
const QUOTED_CONTENT_MAX_CHARS = 40;
/** As the kernel's path walk (MAXSYMLINKS): more symlinks than this is a loop. */
/** Group- or other-writable bits. */
const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;

/** The pidfile exists and is trusted but does not contain a pid. */
export class PidfileContentError extends FpmMultiError {
  readonly path: string;
  readonly content: string;

  constructor(path: string, content: string) {
    super(
      `pidfile ${path} does not contain a process id: found ${quoteForMessage(content)} ` +
        `(expected a decimal number from 2 to ${PID_MAX_LIMIT}, optionally followed by one newline). ` +
        `If no php-fpm of this instance is running, remove ${path}; otherwise find out which program wrote it.`,
    );
    this.path = path;
    this.content = content;
  }
}

/** A pidfile or run directory is placed where someone other than root could replace it. */
export class UntrustedPathError extends FpmMultiError {
  /** The pidfile or directory being checked. */
  readonly subject: string;
  /** The path found at fault: the subject itself or one of its directories. */
  readonly path: string;

  constructor(subject: string, path: string, problem: string, fix: string) {
    super(`${subject}: ${path} ${problem}. ${fix}`);
    this.subject = subject;
    this.path = path;
  }
}

/** `"12abc"` — escaped as a JSON string and cut after QUOTED_CONTENT_MAX_CHARS characters. */
export function quoteForMessage(text: string): string {
  const chars = Array.from(text);
  if (chars.length <= QUOTED_CONTENT_MAX_CHARS) return JSON.stringify(text);
  return `${JSON.stringify(chars.slice(0, QUOTED_CONTENT_MAX_CHARS).join(''))}… (${chars.length} characters)`;
}

// JavaScript's `$` without the m flag matches only at the very end, never before a final newline.
const PIDFILE_CONTENT = /^[1-9][0-9]{0,6}\n?$/;

/**
 * The pid in a pidfile's content. php-fpm writes the bare number (no newline); other tools add
 * one newline; anything else (spaces, signs, leading zeros, exponents, a second line) means the
 * file is not what we think it is, and guessing a pid out of it could aim a signal anywhere.
 */
export function parsePidfile(content: string, path: string): number {
  if (!PIDFILE_CONTENT.test(content)) throw new PidfileContentError(path, content);
  const pid = Number(content.trimEnd());
  if (pid < 2 || pid > PID_MAX_LIMIT) throw new PidfileContentError(path, content);
  return pid;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function trustedUids(system: System): readonly number[] {
  // Root trusts only root. A non-root controller can only signal its own processes anyway
  // (the kernel refuses the rest), so it also trusts files it owns itself.
  return system.uid === 0 ? [0] : [0, system.uid];
}

function ownerNames(system: System): string {
  return system.uid === 0 ? 'root' : `root or uid ${system.uid}`;
}

function requireAbsolute(subject: string, path: string): string {
  if (!posix.isAbsolute(path)) {
    throw new UntrustedPathError(subject, path, 'is a relative path', 'Use an absolute path.');
  }
  return posix.normalize(path);
}

/** lstat, or null when the path does not resolve: missing (or, with `unresolvable`, looping or through a file). */
async function lstatOrNull(system: System, path: string, unresolvable = false): Promise<FileStat | null> {
  try {
    return await system.lstat(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || (unresolvable && (code === 'ELOOP' || code === 'ENOTDIR'))) return null;
    throw error;
  }
}

/**
 * Walks `dir` from `/`, resolving symlinks component by component, and checks every directory
 * and symlink met: owned by a trusted uid, and not writable by group/other unless sticky (a
 * sticky directory lets others add entries but not rename or remove ours, and the next
 * component's owner is checked in turn). Symlinks above the last component are fine when a
 * trusted user owns them (Debian's /var/run -> /run).
 *
 * Returns false when a component does not exist (and `create` is false). With `create`, missing
 * directories are made with RUN_DIRECTORY_MODE.
 */
/**
 * The fix for a directory another user owns: a path whose directories all belong to root first.
 * `chown root` comes last, for it lasts only until whatever created the directory recreates it
 * (Debian's php-fpm service recreates /run/php for www-data at every start).
 */
function describeOwnerFix(subject: string, path: string): string {
  const instead = subject.startsWith('pidfile ')
    ? 'Remove pidfile= (the default, <run dir>/<name>.pid, is under /run/php-fpm-multi) or point it under /run/php-fpm-multi'
    : 'Set FPM_run_dir to a directory under /run/php-fpm-multi, or remove it (the default is there)';
  return `${instead}, where only root writes. (chown root ${path} would hold only until whatever created ${path} recreates it, as a distribution's php-fpm service does with /run/php.)`;
}

async function checkDirectoryChain(system: System, subject: string, dir: string, create: boolean): Promise<boolean> {
  const trusted = trustedUids(system);
  const checkEntry = (path: string, stat: FileStat): void => {
    if (!trusted.includes(stat.uid)) {
      throw new UntrustedPathError(
        subject,
        path,
        `is owned by uid ${stat.uid}, not ${ownerNames(system)}: its owner could replace what lies below it`,
        describeOwnerFix(subject, path),
      );
    }
    if (stat.kind === 'directory' && (stat.mode & WRITABLE_BY_OTHERS) !== 0 && (stat.mode & STICKY) === 0) {
      throw new UntrustedPathError(
        subject,
        path,
        `is writable by group or others without the sticky bit (mode ${octal(stat.mode)}): anyone who can write it can rename what lies below it`,
        `Run chmod go-w ${path}, or use a path whose directories only root can write (for example under /run/php-fpm-multi).`,
      );
    }
  };

  const real = await walkDirectories(system, dir, {
    check: checkEntry,
    missing: async (path) => {
      if (!create) return null;
      try {
        await system.mkdir(path, RUN_DIRECTORY_MODE);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error; // another controller made it first: check it
      }
      return system.lstat(path);
    },
    loop: () => new UntrustedPathError(subject, dir, 'has a symlink loop', 'Fix the symlinks along the path.'),
    notDirectory: (path) => new UntrustedPathError(subject, path, 'is not a directory', `Remove or rename ${path}.`),
  });
  return real !== null;
}

export interface PidfileTrust {
  /** false: no pidfile (or not even its directory) — nothing to read, nothing running by it. */
  exists: boolean;
}

/**
 * Decides whether the content of `pidfile` may be believed. Refuses (UntrustedPathError) when:
 * - the pidfile or its directory is a symlink;
 * - any directory on the way, or the pidfile, is owned by someone other than root (when the
 *   controller is not root: other than root or itself);
 * - the pidfile is writable by group/other;
 * - a directory on the way is writable by group/other without the sticky bit;
 * - the pidfile's own directory is writable by group/other (even sticky, like /tmp) and the
 *   pidfile is missing.
 *
 * Why a sticky shared directory is accepted only with the pidfile present and root-owned: in a
 * sticky directory nobody but the file's owner (root) can unlink or rename that file, so once it
 * exists and is root-owned and not writable by others, its content is root's. While it is missing,
 * any local user may create that name first — a file with a pid of their choosing, or a symlink
 * that php-fpm (root) would then follow when it writes the pidfile (fs.protected_symlinks and
 * fs.protected_regular would stop that, but they are sysctls that may be off, as on this test
 * machine). A controller that starts instances needs the missing case, so pidfiles belong in a
 * root-only directory such as /run/php-fpm-multi.
 *
 * The check holds until the file is read: only root can change a trusted file afterwards.
 */
/**
 * `writer`: the uid an instance with user= runs as (src/process/account.ts). Its php-fpm writes
 * the pidfile, so that user may own the pidfile and its own directory (never a directory above):
 * such a pidfile is a claim of that user, and a claim only. What it names is believed only as a
 * master of that very uid, binary and config (src/process/proc.ts verifyIdentity), and never
 * proves a master ours without our record (src/process/target.ts isInRunDirectory): a user who
 * points it at another process (root's, another user's master) gets nothing signalled.
 */
export async function checkPidfileTrust(system: System, pidfile: string, writer?: number): Promise<PidfileTrust> {
  if (writer !== undefined && !trustedUids(system).includes(writer)) return checkUserPidfileTrust(system, pidfile, writer);
  return checkPidfileTrustOf(system, pidfile);
}

/** The pidfile of an instance run as `writer`: the chain above its directory is root's; the directory and file may be the user's. */
async function checkUserPidfileTrust(system: System, pidfile: string, writer: number): Promise<PidfileTrust> {
  const subject = `pidfile ${pidfile}`;
  const path = requireAbsolute(subject, pidfile);
  const dir = posix.dirname(path);
  if (!(await checkDirectoryChain(system, subject, posix.dirname(dir), false))) return { exists: false };
  const dirStat = await lstatOrNull(system, dir, true);
  if (dirStat === null) return { exists: false };
  const owners = [...trustedUids(system), writer];
  const ownedBy = `${ownerNames(system)} or uid ${writer} (the instance's user)`;
  if (dirStat.kind !== 'directory') {
    throw new UntrustedPathError(subject, dir, `is a ${dirStat.kind === 'symlink' ? 'symlink' : 'not a directory'}`, `Remove ${dir}; php-fpm-multi creates it as a directory of the instance's user.`);
  }
  if (!owners.includes(dirStat.uid) || (dirStat.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw new UntrustedPathError(
      subject, dir, `is owned by uid ${dirStat.uid} with mode ${octal(dirStat.mode)}, not by ${ownedBy} and writable by its owner only`,
      `Remove ${dir} if no php-fpm of this instance runs (php-fpm-multi creates it again), or chown ${writer} ${dir} && chmod go-w ${dir}.`,
    );
  }
  const stat = await lstatOrNull(system, path);
  if (stat === null) return { exists: false };
  if (stat.kind !== 'file') {
    throw new UntrustedPathError(subject, path, stat.kind === 'symlink' ? 'is a symlink' : 'is not a regular file', `Remove ${path}; php-fpm creates the pidfile itself.`);
  }
  if (!owners.includes(stat.uid) || (stat.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw new UntrustedPathError(
      subject, path, `is owned by uid ${stat.uid} with mode ${octal(stat.mode)}, not by ${ownedBy} and writable by its owner only`,
      `Stop that instance by hand if it runs, and remove ${path}; php-fpm creates the pidfile itself.`,
    );
  }
  return { exists: true };
}

async function checkPidfileTrustOf(system: System, pidfile: string): Promise<PidfileTrust> {
  const subject = `pidfile ${pidfile}`;
  const path = requireAbsolute(subject, pidfile);
  const dir = posix.dirname(path);
  // (ELOOP and ENOTDIR are left to the walk, which names the culprit.)
  if ((await lstatOrNull(system, dir, true))?.kind === 'symlink') {
    throw new UntrustedPathError(
      subject,
      dir,
      'is a symlink',
      `Point the pidfile at the real directory (${dir} may be redirected without changing the declaration).`,
    );
  }
  // A missing directory means no pidfile, but what exists of its path is checked all the same.
  if (!(await checkDirectoryChain(system, subject, dir, false))) return { exists: false };
  const dirStat = await system.lstat(dir);
  const sharedDirectory = (dirStat.mode & WRITABLE_BY_OTHERS) !== 0; // sticky, or the walk refused it
  const moveIt = 'Move the pidfile to a directory only root can write, such as /run/php-fpm-multi.';

  const stat = await lstatOrNull(system, path);
  if (stat === null) {
    if (sharedDirectory) {
      throw new UntrustedPathError(
        subject,
        dir,
        `is writable by others (mode ${octal(dirStat.mode)}) and the pidfile does not exist yet: any local user could create it first`,
        moveIt,
      );
    }
    return { exists: false };
  }
  // In a directory others can write, removing what was planted is not enough: the pidfile would
  // not be trusted there either (see above), so the advice is the one that works, at once.
  const elsewhere = sharedDirectory ? ` and ${dir} is writable by others (mode ${octal(dirStat.mode)}), where no pidfile can be trusted` : '';
  const removeOrMove = (removal: string): string => (sharedDirectory
    ? `Move the pidfile to a directory only root can write (remove pidfile= for the default in the run directory, or e.g. pidfile=/run/php-fpm-multi/${posix.basename(path)}), then ${removal.charAt(0).toLowerCase()}${removal.slice(1)}.`
    : `${removal}; php-fpm creates the pidfile itself.`);
  if (stat.kind === 'symlink') {
    throw new UntrustedPathError(subject, path, `is a symlink${elsewhere}`, removeOrMove(`Remove the symlink ${path}`));
  }
  if (stat.kind !== 'file') {
    throw new UntrustedPathError(subject, path, `is not a regular file${elsewhere}`, removeOrMove(`Remove ${path}`));
  }
  const trusted = trustedUids(system);
  if (!trusted.includes(stat.uid)) {
    throw new UntrustedPathError(
      subject,
      path,
      `is owned by uid ${stat.uid}, not ${ownerNames(system)}: that user could have written any pid into it`,
      `Stop that instance by hand if it runs, remove ${path}, and check who else writes there. ${moveIt}`,
    );
  }
  if ((stat.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw new UntrustedPathError(
      subject,
      path,
      `is writable by group or others (mode ${octal(stat.mode)})`,
      `Run chmod go-w ${path} after checking the pid in it.`,
    );
  }
  return { exists: true };
}

/**
 * The pid in a trusted pidfile, or null when there is no pidfile. Throws UntrustedPathError or
 * PidfileContentError (never guesses).
 */
export async function readTrustedPidfile(system: System, pidfile: string, writer?: number): Promise<number | null> {
  const { exists } = await checkPidfileTrust(system, pidfile, writer);
  if (!exists) return null;
  let content: string;
  try {
    content = await system.readFile(pidfile, { maxBytes: PIDFILE_MAX_BYTES, noFollow: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null; // removed meanwhile by its (trusted) writer
    if (error instanceof UnsafeFileError) {
      throw new UntrustedPathError(`pidfile ${pidfile}`, pidfile, error.problem, `Remove ${pidfile} if no php-fpm of this instance runs; php-fpm creates the pidfile itself.`);
    }
    throw error;
  }
  return parsePidfile(content, posix.normalize(pidfile));
}

async function checkRunDirectoryItself(system: System, subject: string, dir: string, create: boolean): Promise<boolean> {
  const stat = await lstatOrNull(system, dir, true);
  if (stat?.kind === 'symlink') {
    throw new UntrustedPathError(subject, dir, 'is a symlink', `Remove the symlink ${dir}; it is created as a real directory.`);
  }
  if (!(await checkDirectoryChain(system, subject, dir, create))) return false;
  const final = await system.lstat(dir);
  if ((final.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw new UntrustedPathError(
      subject,
      dir,
      `is writable by group or others (mode ${octal(final.mode)}); the controller keeps its lock and pidfiles there`,
      `Run chmod 0755 ${dir}.`,
    );
  }
  return true;
}

/**
 * Checks a run directory (where the lock and pidfiles live) like a pidfile's directory, but
 * stricter: it must not be writable by group/other at all, sticky or not. Returns false when it
 * does not exist.
 */
export async function checkRunDirectory(system: System, dir: string): Promise<boolean> {
  const subject = `run directory ${dir}`;
  return checkRunDirectoryItself(system, subject, requireAbsolute(subject, dir), false);
}

/** As checkRunDirectory, creating the directory (and missing parents) with mode 0755 when missing. */
export async function ensureRunDirectory(system: System, dir: string): Promise<void> {
  const subject = `run directory ${dir}`;
  await checkRunDirectoryItself(system, subject, requireAbsolute(subject, dir), true);
}
