// The declaration file as a process-control command loads it before it touches a process: read
// (never executed) with its run directory chosen (loadDeclaration), what the command requires of
// it (Requirement), the preflight of its instances' php-fpm configs, its real path (what records
// name), and the records read from a run directory whose trust was checked.
import type { CommandContext } from '../cli/command.js';
import { FpmMultiError, NotConfiguredError } from '../errors.js';
import { chooseRunDirUid, loadModel } from '../model/load.js';
import { defaultRunDir } from '../model/build.js';
import type { Instance, Model } from '../model/instance.js';
import { runPreflight, type Preflight } from './preflight.js';
import { readRecords, type RunDirectoryState } from './record.js';
import { describeRunDirectoryError } from './run-directory.js';
import { selectInstances } from '../model/selection.js';
import { posix as path } from 'node:path';
import type { System } from './system.js';

/**
 * The declaration file as a command sees it before it looks at the run directory: read (never
 * executed) and its run directory chosen. Reading it touches nothing in the run directory.
 */
export interface Declared {
  conf: string;
  /** null when the file could not be read or was refused as a whole. */
  model: Model | null;
  runDir: string;
  /**
   * Why the file as a whole cannot be used; null when it can. Only `stop` and `status` go on
   * then, from the records in the run directory: a typo must never block a shutdown.
   */
  unusable: string | null;
}

/**
 * Reads the declaration file and chooses its run directory. For a command that requires only the
 * records (stop, status), a file refused as a whole does not throw: the run directory is then
 * FPM_run_dir when it could be read, else the default for the file's name, and `unusable` says why.
 */
export function loadDeclaration(context: CommandContext, requirement: Requirement): Declared {
  const tolerateUnusable = requirement === 'records';
  const { io, conf } = context;
  const uid = chooseRunDirUid(io.system, conf);
  let model: Model | null = null;
  let problems: string[];
  try {
    model = loadModel(io.system, conf, io.env, uid);
    problems = [...model.problems];
  } catch (error) {
    if (!(error instanceof FpmMultiError) || !tolerateUnusable) throw error;
    problems = [error.message];
  }
  const runDir = model?.runDir ?? defaultRunDir(conf, io.env, uid);
  if (problems.length === 0 && runDir !== null) return { conf, model, runDir, unusable: null };
  if (!tolerateUnusable || runDir === null) {
    throw new NotConfiguredError(`${conf} is unusable, so no instance was touched:\n  ${problems.join('\n  ')}\nFix it and run php-fpm-multi check.`);
  }
  return { conf, model, runDir, unusable: problems.join('; ') };
}

/** The warning `stop` and `status` print when they act on the records alone (src/cli/reporter.ts adds the prefix). */
export function describeUnusableFile(declared: Declared): string {
  return `${declared.conf} is unusable (${declared.unusable}); acting on the records in ${declared.runDir}`;
}

/**
 * What a command needs of the declaration before it acts, each level including the ones before:
 * - 'records': nothing but the records (stop, status): an unusable file does not stop it, for a
 *   typo must never block a shutdown, and nothing to act on is no failure;
 * - 'declaration': a usable file that declares something to act on (reopen);
 * - 'fpm-facts': and each instance's php-fpm config, only read (health, status --pools ask the
 *   pools of what runs, whatever a start would refuse);
 * - 'fpm-configs': and what refuses a start of an instance (configtest);
 * - 'no-collisions': and no two enabled instances sharing a config, pidfile or listen address
 *   (start, restart, reload: the commands that launch or re-execute php-fpm).
 */
export type Requirement = 'records' | 'declaration' | 'fpm-facts' | 'fpm-configs' | 'no-collisions';

const REQUIREMENT_ORDER: readonly Requirement[] = ['records', 'declaration', 'fpm-facts', 'fpm-configs', 'no-collisions'];

/** Whether `requirement` includes `level`. */
export function requires(requirement: Requirement, level: Requirement): boolean {
  return REQUIREMENT_ORDER.indexOf(requirement) >= REQUIREMENT_ORDER.indexOf(level);
}

/**
 * The preflight (src/process/preflight.ts, shared with `check`) of every enabled usable instance and of
 * those named on the command line: their php-fpm configs and what start refuses. None of it is
 * state of the run directory, so it may run before the lock is taken.
 */
export async function runDeclaredPreflight(
  system: System, declared: Declared, selection: readonly string[], requirement: Requirement, path: string | undefined,
): Promise<Preflight | null> {
  if (!requires(requirement, 'fpm-facts') || declared.model === null || declared.unusable !== null) return null;
  // Loaded only here: status and stop never read php-fpm configs and need not parse this module.
  const { readFpmConfig } = await import('../php-fpm/config/load.js');
  let named: Instance[] = [];
  try {
    named = selectInstances(declared.model.instances, selection);
  } catch (error) {
    if (!(error instanceof FpmMultiError)) throw error; // an unknown name is reported once the records are read
  }
  return runPreflight(system, declared.model, named, { readFpmConfig, path, factsOnly: !requires(requirement, 'fpm-configs') });
}

/** What a command read of the run directory (see RunDirectoryState); `unreadable` may be left out when none are. */
export type RecordsRead = Pick<RunDirectoryState, 'records' | 'problems'> & Partial<Pick<RunDirectoryState, 'intents' | 'unreadable' | 'foreign'>>;

/** The names a read of a run directory knows of: records, launch intents, unreadable records. */
export function namesIn(read: RecordsRead): string[] {
  return [...new Set([...read.records.map((r) => r.name), ...(read.intents ?? []).map((i) => i.name), ...(read.unreadable?.keys() ?? [])])];
}

/**
 * The declaration file's real path, resolved once per command: what records name. A missing file
 * (stop and status still work) is resolved through its directory, else taken as written.
 */
export async function resolveDeclarationFile(system: System, conf: string): Promise<string> {
  try {
    return await system.realpath(conf);
  } catch {
    try {
      return path.join(await system.realpath(path.dirname(path.resolve(conf))), path.basename(conf));
    } catch {
      return path.resolve(conf);
    }
  }
}

/**
 * 10g: whether a run directory holds anything a command that only reads records (stop) should
 * lock for: its lock, a record or a launch intent. Without any of them there is nothing recorded,
 * and stop creates nothing (no lock file).
 */
export async function holdsControllerState(system: System, runDir: string): Promise<boolean> {
  try {
    return (await system.readdir(runDir)).some((entry) => entry === 'lock' || entry.endsWith('.record.json') || entry.endsWith('.launch.json'));
  } catch (error) {
    throw describeRunDirectoryError(system, runDir, error);
  }
}

/**
 * The records of the run directory, once its trust was checked (the caller's job: before the
 * lock for commands that take it, here for those that do not). A run directory that does not
 * exist holds no records.
 */
export async function readRunDirectoryRecords(system: System, runDir: string, file?: string): Promise<RecordsRead> {
  try {
    return await readRecords(system, runDir, file);
  } catch (error) {
    throw describeRunDirectoryError(system, runDir, error);
  }
}
