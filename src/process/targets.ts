// Everything a process-control command needs before it touches a process: the declaration and
// its run directory (loadDeclaration), the records of what was started (read only once the run
// directory is trusted, and under the lock for the commands that take it), each instance's
// php-fpm config (listen addresses, pid, error log), and the refusal of a run whose instances
// would collide.
import type { CommandContext } from '../cli/command.js';
import { FpmMultiError, NotConfiguredError } from '../errors.js';
import { chooseRunDirUid, loadModel } from '../model/load.js';
import { defaultRunDir } from '../model/build.js';
import type { Instance, Model } from '../model/instance.js';
import { isUsable, runPreflight, type Preflight } from './preflight.js';
import { readRecords, type InstanceRecord, type LaunchIntent, type RunDirectoryState } from './record.js';
import { describeRunDirectoryError, trustRunDirectory } from './run-directory.js';
import { selectInstances, selectTargets } from '../model/selection.js';
import { isInRunDirectory, type Target } from './target.js';
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

export interface Prepared {
  declared: Declared;
  runDir: string;
  targets: Target[];
  /** Records that could not be read: reported, never trusted. */
  recordProblems: string[];
  /** Whole-run refusals found by the preflight (shared files, listen collisions); [] without it. */
  collisions: string[];
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
 * Which targets a command acts on (chooseTargets):
 * - 'selected': the named instances, else every enabled one (start, reload, health …);
 * - 'selected-and-recorded': and, without names, whatever else has a record: instances no longer
 *   declared (orphans) and disabled ones started by name (restart: an orphan is stopped);
 * - 'everything-recorded': and names may name records too (stop, status): an orphan can be
 *   stopped by name, for stop must reach everything that runs.
 */
export type TargetChoice = 'selected' | 'selected-and-recorded' | 'everything-recorded';

/** Whether instance names may name records: then they are checked once the records are read. */
function namesRecords(choice: TargetChoice): boolean {
  return choice === 'everything-recorded';
}

/** Whether a command acts on records beyond the declared instances it selects. */
export function reachesRecords(choice: TargetChoice): boolean {
  return choice !== 'selected';
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

/** Refuses a declaration that cannot be acted on before anything is read from its run directory. */
export function checkSelection(declared: Declared, choice: TargetChoice, selection: readonly string[]): void {
  // Names that may be recorded are checked once the records are read (under the lock).
  if (!namesRecords(choice) && declared.model !== null) selectInstances(declared.model.instances, selection);
}

/** Why a declared instance cannot be acted on; null when it can. */
function describeUnusable(instance: Instance): string {
  return instance.problems.join('; ') || 'its php-fpm binary, config or pidfile is unknown';
}

/**
 * The targets a command chooses (see TargetChoice) from the declaration and the records read from
 * its run directory (after the lock was taken, for commands that take it: a record written by a
 * command that held the lock must be seen). With an unusable file, only the records are targets.
 */
export function chooseTargets(
  declared: Declared, read: RecordsRead, selection: readonly string[], choice: TargetChoice, preflight: Preflight | null = null,
): Prepared {
  const { records, problems: recordProblems } = read;
  const { runDir } = declared;
  const instances = declared.unusable === null && declared.model !== null ? declared.model.instances : [];
  const intents = read.intents ?? [];
  // A launch intent stands for a record (the master of its launch is found through it): its name is valid too.
  const recordedNames = [...new Set([...records.map((record) => record.name), ...intents.map((intent) => intent.name)])];
  const chosen = namesRecords(choice)
    ? selectTargets(instances, recordedNames, selection)
    : { instances: selectInstances(instances, selection), recorded: [] };
  const recordFor = (name: string): InstanceRecord | null => records.find((record) => record.name === name) ?? null;
  const unreadableRecord = (name: string): string | null => read.unreadable?.get(name) ?? null;
  const intentFor = (name: string): LaunchIntent | null => intents.find((intent) => intent.name === name) ?? null;
  const targets: Target[] = chosen.instances.map((instance): Target => {
    const record = recordFor(instance.name);
    const pidfileProves = isInRunDirectory(instance.pidfile, runDir);
    if (!isUsable(instance)) return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason: describeUnusable(instance), record, pidfileProves };
    const checked = preflight?.instances.get(instance.name);
    if (checked !== undefined && checked.problems.length > 0) {
      // Refused before anything is touched: not started, and a restart leaves the running one as it is.
      return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason: checked.problems.join('; '), record, pidfileProves };
    }
    const facts = checked?.facts ?? { pools: [], errorLog: null };
    return {
      kind: 'declared', name: instance.name, instance, record, intent: intentFor(instance.name), recordProblem: unreadableRecord(instance.name), pidfileProves,
      errorLog: facts.errorLog, pools: facts.pools,
    };
  });
  // With an unusable file nobody knows what is declared: every record is taken as declared, so
  // that status counts it (running: 0, stopped: 3) and names it `running`, not `orphan`.
  const fileKnown = declared.unusable === null;
  const untargeted = recordedNames.filter((name) => !targets.some((target) => target.name === name));
  const recordedTargets = selection.length === 0
    ? (reachesRecords(choice) || !fileKnown ? untargeted : [])
    : untargeted.filter((name) => chosen.recorded.includes(name));
  for (const name of recordedTargets) {
    const record = recordFor(name);
    const intent = intentFor(name);
    if (record === null) {
      if (intent === null) continue;
      const disabled = instances.find((instance) => instance.name === name);
      if (disabled !== undefined && isUsable(disabled)) {
        targets.push({
          kind: 'declared', name, instance: disabled, record: null, intent, recordProblem: null, pidfileProves: isInRunDirectory(disabled.pidfile, runDir),
          errorLog: null, pools: [],
        });
      } else {
        targets.push({ kind: 'launched', name, intent, why: fileKnown && disabled === undefined ? 'undeclared' : 'file-unusable' });
      }
      continue;
    }
    const disabled = instances.find((instance) => instance.name === record.name);
    if (disabled === undefined) {
      targets.push({ kind: 'orphan', name: record.name, record, why: fileKnown ? 'undeclared' : 'file-unusable' });
    } else if (isUsable(disabled)) {
      targets.push({
        kind: 'declared', name: disabled.name, instance: disabled, record, intent, recordProblem: null, pidfileProves: isInRunDirectory(disabled.pidfile, runDir),
        errorLog: null, pools: [],
      });
    } else {
      // Its record is what can be acted on; status shows the recorded pidfile.
      targets.push({ kind: 'unusable', name: disabled.name, pidfile: record.pidfile, reason: describeUnusable(disabled), record, pidfileProves: isInRunDirectory(record.pidfile, runDir) });
    }
  }
  return { declared, runDir, targets, recordProblems, collisions: preflight?.collisions ?? [] };
}

/** What a command read of the run directory (see RunDirectoryState); `unreadable` may be left out when none are. */
export type RecordsRead = Pick<RunDirectoryState, 'records' | 'problems'> & Partial<Pick<RunDirectoryState, 'intents' | 'unreadable'>>;

/**
 * The records of the run directory, once its trust was checked (the caller's job: before the
 * lock for commands that take it, here for those that do not). A run directory that does not
 * exist holds no records.
 */
export async function readRunDirectoryRecords(system: System, runDir: string): Promise<RecordsRead> {
  try {
    return await readRecords(system, runDir);
  } catch (error) {
    throw describeRunDirectoryError(system, runDir, error);
  }
}

/**
 * Reads what a read-only command (status, health, status --pools) needs: the declaration, the
 * run directory's trust (before anything in it is read), its records, and the targets.
 */
export async function prepareTargets(system: System, context: CommandContext, choice: TargetChoice, requirement: Requirement): Promise<Prepared> {
  const declared = loadDeclaration(context, requirement);
  checkSelection(declared, choice, context.selection);
  const preflight = await runDeclaredPreflight(system, declared, context.selection, requirement, context.io.env['PATH']);
  const exists = await trustRunDirectory(system, declared.runDir, false);
  const read = exists ? await readRunDirectoryRecords(system, declared.runDir) : { records: [], problems: [] };
  return chooseTargets(declared, read, context.selection, choice, preflight);
}

/**
 * A command that acts on instances refuses a declaration without any: starting or checking
 * nothing must not look like success (a lost declaration would look healthy forever).
 */
export function requireInstances(prepared: { declared: Declared; targets: readonly Target[] }, whatNotDone: string): void {
  if (prepared.targets.length > 0) return;
  throw new NotConfiguredError(
    `${prepared.declared.conf} declares no enabled instance, so nothing was ${whatNotDone}; declare one, e.g. FPM_slot_1="slot=php8.2 config=/etc/php/fpm-php8.2/php-fpm.conf"`,
  );
}
