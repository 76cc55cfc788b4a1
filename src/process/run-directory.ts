// The run directory before anything in it is read: trusted (pidfile.ts's walk from `/`), or the
// command is refused with a named error. Every command goes through here before it reads a
// record, a failure note or the lock, so a hostile FPM_run_dir (another user's, writable by
// others) never gets a FIFO, a device or a forged record in front of the controller.
import { describeErrno, FpmMultiError } from '../errors.js';
import { EXIT_NEEDS_ROOT, EXIT_NOT_CONFIGURED } from '../exit-codes.js';
import { checkRunDirectory, ensureRunDirectory, UntrustedPathError } from './pidfile.js';
import { errnoCode, type System } from './system.js';


/** The run directory cannot be used (untrusted, not a directory, not creatable): nothing in it was read. */
export class RunDirectoryError extends FpmMultiError {
  constructor(message: string) {
    super(message, EXIT_NOT_CONFIGURED);
  }
}

/** An ordinary user asked for what only root may do or read. */
export class NeedsRootError extends FpmMultiError {
  constructor(message: string) {
    super(message, EXIT_NEEDS_ROOT);
  }
}

/** A typed, named error for anything that went wrong with the run directory itself. */
export function describeRunDirectoryError(system: System, runDir: string, error: unknown): unknown {
  if (error instanceof UntrustedPathError) {
    return new RunDirectoryError(`${error.message} Nothing in it was read.`);
  }
  if (error instanceof FpmMultiError) return error;
  const code = errnoCode(error);
  if (code === undefined) return error; // not an IO failure: a bug, reported as one
  if ((code === 'EACCES' || code === 'EPERM') && system.uid !== 0) {
    return new NeedsRootError(
      `run directory ${runDir}: ${describeErrno(error)} for uid ${system.uid}: root keeps it (the declaration file belongs to root), so the state of its instances cannot be determined without root, and only root may start or stop them: needs root: run it as root`,
    );
  }
  const fix = code === 'ENOTDIR'
    ? `set FPM_run_dir to a directory (or remove the file in its way)`
    : code === 'EROFS' || code === 'ENOSPC' || code === 'EDQUOT'
      ? `free the file system or make it writable, or set FPM_run_dir to a directory on another one`
      : `check the path and its permissions`;
  return new RunDirectoryError(`run directory ${runDir}: ${describeErrno(error)}; ${fix}`);
}

/**
 * Checks the run directory's trust before anything in it is read; `create` (commands that take
 * the lock) makes it when missing. Returns false when it does not exist (and was not created).
 */
export async function trustRunDirectory(system: System, runDir: string, create: boolean): Promise<boolean> {
  try {
    if (!create) return await checkRunDirectory(system, runDir);
    await ensureRunDirectory(system, runDir);
    return true;
  } catch (error) {
    throw describeRunDirectoryError(system, runDir, error);
  }
}

/**
 * An ordinary user cannot start, stop or reload what root runs: the run directory (its lock,
 * records, pidfiles) belongs to root. Said before anything is tried, with the fix.
 */
export async function refuseRootRunDirectory(system: System, conf: string, runDir: string, verb: string): Promise<void> {
  if (system.uid === 0) return;
  let owner: number;
  try {
    owner = (await system.lstat(runDir)).uid;
  } catch {
    return; // missing: creating it tells (EACCES under a root directory is mapped to NeedsRootError)
  }
  if (owner === system.uid) return;
  throw new NeedsRootError(
    `${conf}: its instances are run by uid ${owner} (the run directory ${runDir} belongs to it), so nothing was ${verb}: needs root: run it as root`,
  );
}
