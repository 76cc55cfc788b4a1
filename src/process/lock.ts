// The controller-wide lock: mutating commands (start, stop, restart, reload) hold it so two
// invocations never act on the same instances at once — e.g. never start an instance twice.
//
// Mechanism: flock(2) on a lock file, taken by util-linux flock(1) on OUR open file description.
// We open the file (close-on-exec), run `flock --exclusive --wait S 3` with that descriptor as
// the child's fd 3; flock(2) locks the open file description, which the child shares with us, so
// when the child exits 0 the lock stays held by the description we keep open. The kernel drops it
// when we close the descriptor or when our process dies in any way, SIGKILL included: there is
// never a stale lock to clean up, and the file's content (the holder's pid) is only for messages.
// Node has no flock binding of its own; this borrows one without a native addon.
//
// Rules that keep it correct:
// - the lock file is never removed or replaced (a waiter holding the old inode would lock
//   nothing); if an admin removes it anyway, acquireLock notices and locks the new file;
// - it is not re-entrant: a second acquireLock in the same process waits for the first;
// - the directory must be trusted first (pidfile.ts: ensureRunDirectory).

import { FpmMultiError } from '../errors.js';
import { readProcess } from './proc.js';
import { NeedsRootError } from './run-directory.js';
import { EXIT_NOT_CONFIGURED } from '../exit-codes.js';
import { errnoCode, PIDFILE_MAX_BYTES, type FileStat, type OpenFile, type System } from './system.js';

/** Default time a mutating command waits for another one to finish. */
export const LOCK_WAIT_TIMEOUT_MS = 30_000;
/** util-linux flock(1) (busybox's lacks --wait and --conflict-exit-code). */
export const FLOCK_PROGRAM = '/usr/bin/flock';
/** Exit code we ask flock to use for "held by someone else", distinct from its own error codes (64-78). */
const FLOCK_CONFLICT_EXIT_CODE = 100;
/** flock(1) enforces the wait itself; this extra time only bounds a hung flock process. */
const FLOCK_RUN_MARGIN_MS = 5_000;
/** Times we retry when the lock file was replaced under us. */
const LOCK_ATTEMPTS = 3;
/** Permission bits that would let other users open the file (and so lock it: a denial of service). */
const OPENABLE_BY_OTHERS = 0o066;

export interface LockOptions {
  /** How long to wait for the current holder; 0 fails at once. Default LOCK_WAIT_TIMEOUT_MS. */
  waitMs?: number;
  /** Path of util-linux flock. Default FLOCK_PROGRAM. */
  flockProgram?: string;
}

export interface HeldLock {
  readonly path: string;
  /** Releases the lock (idempotent). Exiting the process releases it too. */
  release(): Promise<void>;
}

/** The lock is held by another process and was not released within the wait. */
export class LockTimeoutError extends FpmMultiError {
  readonly path: string;
  readonly holderPid: number | null;

  constructor(path: string, waitMs: number, holderPid: number | null, holder: string) {
    super(
      `${waitMs === 0 ? 'could not take' : `timed out after ${waitMs / 1000} s waiting for`} the lock ${path}, held by ${holder}: ` +
        'another php-fpm-multi command is still running. Wait for it to finish and retry ' +
        '(the lock is released the moment that process exits; there is never a stale lock to remove).',
    );
    this.path = path;
    this.holderPid = holderPid;
  }
}

/** The lock could not be taken for another reason than another holder. */
export class LockError extends FpmMultiError {
  readonly path: string;

  constructor(path: string, problem: string, fix: string, exitCode?: number) {
    super(`lock ${path}: ${problem}. ${fix}`, exitCode);
    this.path = path;
  }
}

/** The fix for a lock file that is not what the controller creates: remove it, it is recreated. */
function removalFix(path: string): string {
  return `Remove ${path} while no php-fpm-multi command runs; it is recreated with mode 0600.`;
}

/**
 * Why an existing lock file cannot be used (what start and stop refuse, and check reports), or
 * null: not a regular file, another owner, or openable by others. `owner`: whose it must be.
 */
export function describeLockFile(stat: FileStat, owner: number): string | null {
  if (stat.kind !== 'file') return stat.kind === 'symlink' ? 'is a symlink' : 'is not a regular file';
  if (stat.uid !== owner) return `is owned by uid ${stat.uid}, not by uid ${owner} running php-fpm-multi`;
  if ((stat.mode & OPENABLE_BY_OTHERS) !== 0) return `can be opened by other users (mode 0${stat.mode.toString(8)}), who could then hold the lock forever`;
  return null;
}

/**
 * What `check` reports of the lock in `runDir` (start and stop would refuse it: the run directory
 * is unusable, exit 6), or null. Read-only: lstat, never an open (a FIFO would block it).
 */
export async function describeLockProblem(system: System, runDir: string): Promise<string | null> {
  const path = `${runDir}/lock`;
  let stat: FileStat;
  try {
    stat = await system.lstat(path);
  } catch {
    return null; // missing (created by the first command that locks), or not reachable: nothing to say
  }
  // An ordinary user checking root's file: root's lock is root's, which is right.
  const problem = describeLockFile(stat, system.uid !== 0 && stat.uid === 0 ? 0 : system.uid);
  return problem === null ? null : `lock ${path}: ${problem}. ${stat.kind === 'symlink' ? `Remove the symlink ${path}.` : removalFix(path)}`;
}

/**
 * Opens the lock read-write, or read-only when the file system refuses writing (EROFS) and the
 * file exists: flock(2) works on a read-only descriptor, and `stop` must work on a read-only run
 * directory (it can stop what the records name without writing anything first).
 */
async function openLockFile(system: System, path: string): Promise<OpenFile> {
  try {
    return await system.openLockFile(path);
  } catch (error) {
    if (errnoCode(error) !== 'EROFS') throw error;
    return system.openLockFile(path, { readOnly: true });
  }
}

/** The holder's pid, for messages only: best effort (a full or read-only run directory refuses it). */
async function writeHolder(file: OpenFile, content: string): Promise<void> {
  try {
    await file.overwrite(content);
  } catch {
    // ENOSPC, EDQUOT, EROFS, EBADF on a read-only descriptor: the lock is held all the same.
  }
}

async function openChecked(system: System, path: string): Promise<OpenFile> {
  let file: OpenFile;
  try {
    file = await openLockFile(system, path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ELOOP') throw new LockError(path, 'is a symlink', `Remove the symlink ${path}.`, EXIT_NOT_CONFIGURED);
    if (code === 'ENOENT') throw new LockError(path, 'its directory does not exist', 'Create the run directory first.');
    if (code === 'EACCES' && system.uid !== 0) {
      throw new NeedsRootError(`lock ${path}: permission denied (EACCES) for uid ${system.uid}: another user (root) runs these instances; needs root: run it as root`);
    }
    throw new LockError(path, `cannot be opened (${code ?? String(error)})`, 'Check the run directory.');
  }
  const problem = describeLockFile(await file.stat(), system.uid);
  if (problem !== null) {
    await file.close();
    // What is planted in the run directory makes it unusable: exit 6, as an untrusted run directory.
    throw new LockError(path, problem, removalFix(path), EXIT_NOT_CONFIGURED);
  }
  return file;
}

/** Does `path` still name the file `file` is open on (nobody removed or replaced it)? */
async function stillNamesFile(system: System, path: string, file: OpenFile): Promise<boolean> {
  const held = await file.stat();
  try {
    const named = await system.stat(path);
    return named.dev === held.dev && named.ino === held.ino;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** "pid 1234 (node /usr/bin/php-fpm-multi start)" from the pid the holder wrote, best effort. */
async function describeHolder(system: System, path: string): Promise<{ pid: number | null; text: string }> {
  try {
    const content = await system.readFile(path, { maxBytes: PIDFILE_MAX_BYTES, noFollow: true });
    if (!/^[1-9][0-9]*\n?$/.test(content)) return { pid: null, text: 'another process (its pid is not recorded yet)' };
    const pid = Number(content.trim());
    const proc = await readProcess(system, pid);
    if (proc === null) return { pid, text: `pid ${pid} (as recorded in the file; that process seems gone)` };
    return { pid, text: `pid ${pid} (${proc.cmdline.join(' ') || proc.comm})` };
  } catch {
    return { pid: null, text: 'another process (its pid cannot be read)' };
  }
}

/**
 * Takes the exclusive controller lock on `path`, waiting up to `options.waitMs`. Throws
 * LockTimeoutError (naming the holder's pid when known) or LockError.
 */
export async function acquireLock(system: System, path: string, options: LockOptions = {}): Promise<HeldLock> {
  const waitMs = options.waitMs ?? LOCK_WAIT_TIMEOUT_MS;
  const flockProgram = options.flockProgram ?? FLOCK_PROGRAM;
  if (!Number.isFinite(waitMs) || waitMs < 0) throw new LockError(path, `invalid wait ${waitMs} ms`, 'Give a wait of 0 or more milliseconds.');
  const deadline = system.now() + waitMs;

  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt += 1) {
    const file = await openChecked(system, path);
    let keep = false;
    try {
      const remainingMs = Math.max(0, deadline - system.now());
      const waitArgs = remainingMs === 0 ? ['--nonblock'] : ['--wait', String(remainingMs / 1000)];
      const result = await system.run(
        flockProgram,
        ['--exclusive', ...waitArgs, '--conflict-exit-code', String(FLOCK_CONFLICT_EXIT_CODE), '3'],
        { env: {}, timeoutMs: remainingMs + FLOCK_RUN_MARGIN_MS, fd3: file.fd },
      );
      if (result.exitCode === FLOCK_CONFLICT_EXIT_CODE) {
        const holder = await describeHolder(system, path);
        throw new LockTimeoutError(path, waitMs, holder.pid, holder.text);
      }
      if (result.exitCode !== 0) {
        const how = result.timedOut ? 'hung and was killed' : `failed (exit ${result.exitCode ?? result.signal})`;
        throw new LockError(path, `${flockProgram} ${how}: ${result.stderr.trim() || 'no message'}`, 'Check that util-linux flock is installed.');
      }
      if (!(await stillNamesFile(system, path, file))) continue; // we locked a removed file: lock the new one
      await writeHolder(file, `${system.pid}\n`);
      keep = true;
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          try {
            await writeHolder(file, ''); // while still holding it: the next holder writes its own pid
          } finally {
            await file.close();
          }
        },
      };
    } finally {
      if (!keep) await file.close();
    }
  }
  throw new LockError(path, `was removed or replaced ${LOCK_ATTEMPTS} times while being locked`, 'Stop whatever deletes it.');
}
