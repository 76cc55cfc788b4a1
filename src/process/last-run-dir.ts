// The run directory a declaration file's last start used, remembered in the file's DEFAULT run
// directory: so that `stop` and `status` still reach its instances when the file became unusable
// (a refused line loses FPM_run_dir) or FPM_run_dir was edited while they run (tryout 2 findings
// 3 and 9). The pointer is one small JSON file per declaration file (named by a hash of its real
// path: two files of the same name share a default run directory), written atomically by start in
// a trusted directory, and read as records are: trust first, regular file, size-capped.
import { posix as path } from 'node:path';
import { checkRunDirectory, ensureRunDirectory } from './pidfile.js';
import { readRecords } from './record.js';
import { errnoCode, RECORD_MAX_BYTES, type System } from './system.js';

const POINTER_PREFIX = 'last-run-dir.';
const POINTER_SUFFIX = '.json';
const POINTER_MODE = 0o644;

interface RunDirPointer {
  /** The declaration file's real path. */
  declaration: string;
  /** The FPM_run_dir its last start used. */
  runDir: string;
}

export async function pointerPath(defaultDir: string, declaration: string): Promise<string> {
  // node:crypto is loaded only here (~3.5 ms): most commands never need a pointer.
  const { createHash } = await import('node:crypto');
  const key = createHash('sha256').update(declaration).digest('hex').slice(0, 16);
  return path.join(defaultDir, `${POINTER_PREFIX}${key}${POINTER_SUFFIX}`);
}

/**
 * The run directory the pointer in `defaultDir` names for `declaration`, or null: none, another
 * file's, unreadable, or the default directory untrusted (then it proves nothing and is ignored:
 * the run directory's own trust is checked again before its records are read).
 */
export async function readLastRunDir(system: System, defaultDir: string, declaration: string): Promise<string | null> {
  try {
    if (!(await checkRunDirectory(system, defaultDir))) return null;
    const parsed: unknown = JSON.parse(await system.readFile(await pointerPath(defaultDir, declaration), { maxBytes: RECORD_MAX_BYTES, noFollow: true }));
    const pointer = parsed as Partial<RunDirPointer>;
    if (typeof parsed !== 'object' || parsed === null || pointer.declaration !== declaration) return null;
    return typeof pointer.runDir === 'string' && path.isAbsolute(pointer.runDir) ? path.normalize(pointer.runDir) : null;
  } catch {
    return null; // no pointer, or one that cannot be believed: the records of FPM_run_dir alone
  }
}

/** Whether `runDir` holds a record or launch intent of `declaration`; null when it cannot be told (untrusted, unreadable). */
async function holdsRecordsOf(system: System, runDir: string, declaration: string): Promise<boolean | null> {
  try {
    if (!(await checkRunDirectory(system, runDir))) return false;
    const read = await readRecords(system, runDir, declaration);
    return read.records.length > 0 || read.intents.length > 0 || read.unreadable.size > 0;
  } catch {
    return null;
  }
}

/**
 * Called by start (and restart) once it holds the run directory's lock. Points the default run
 * directory at `runDir` when it is another one. A pointer to a directory that still holds records
 * of this file is kept: those instances run there, and stop must still reach them. Returns a
 * warning when the pointer could not be written (stop and status then see only FPM_run_dir).
 */
export async function rememberRunDir(system: System, defaultDir: string | null, declaration: string, runDir: string): Promise<string | null> {
  if (defaultDir === null || path.normalize(defaultDir) === path.normalize(runDir)) return null;
  const previous = await readLastRunDir(system, defaultDir, declaration);
  if (previous === path.normalize(runDir)) return null;
  if (previous !== null && (await holdsRecordsOf(system, previous, declaration)) === true) return null;
  const pointer = await pointerPath(defaultDir, declaration);
  try {
    await ensureRunDirectory(system, defaultDir);
    await system.writeFileAtomic(pointer, `${JSON.stringify({ declaration, runDir: path.normalize(runDir) } satisfies RunDirPointer)}\n`, POINTER_MODE);
    return null;
  } catch (error) {
    const why = errnoCode(error) ?? (error instanceof Error ? error.message : String(error));
    return `could not remember the run directory ${runDir} in ${pointer} (${why}): if ${declaration} becomes unusable or FPM_run_dir is changed while its instances run, stop and status will not find them`;
  }
}

/**
 * Called by stop once it acted on the previous run directory: when that directory holds no record
 * or launch intent of this file any more, the pointer is removed (best effort: a pointer left
 * behind only makes stop and status look there again).
 */
export async function forgetRunDir(system: System, defaultDir: string | null, declaration: string, runDir: string): Promise<void> {
  if (defaultDir === null || (await holdsRecordsOf(system, runDir, declaration)) !== false) return;
  if ((await readLastRunDir(system, defaultDir, declaration)) !== path.normalize(runDir)) return;
  try {
    await system.unlink(await pointerPath(defaultDir, declaration));
  } catch {
    // read-only or already gone: harmless, see above
  }
}
