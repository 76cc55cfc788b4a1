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
import { readLastRunDir } from './last-run-dir.js';
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

export interface Prepared {
  declared: Declared;
  runDir: string;
  targets: Target[];
  /** The declaration file's real path (what its records name); left out by callers that do not read records. */
  file?: string;
  /**
   * stop and status: the records of this file in its previous run directory (the one its last start
   * used, when the file is unusable or FPM_run_dir changed), acted on there; null when none.
   */
  previous?: (PreviousRunDir & { targets: Target[] }) | null;
  /**
   * Whether a run directory of this file (its own, or its previous one) was ever used: it holds
   * the controller's lock or a record. With an unusable file and nothing used, what runs cannot
   * be told; with a used one whose records are gone, its instances were stopped.
   */
  used?: boolean;
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
  elsewhere: readonly string[] = [],
): Prepared {
  const { records } = read;
  const foreign = read.foreign ?? new Map<string, string>();
  // Records of another declaration file sharing this run directory: reported, never acted on.
  const recordProblems = [...read.problems, ...foreign.values()];
  const { runDir } = declared;
  const instances = declared.unusable === null && declared.model !== null ? declared.model.instances : [];
  const intents = read.intents ?? [];
  // A launch intent stands for a record (the master of its launch is found through it): its name is valid too.
  const recordedNames = [...new Set([...records.map((record) => record.name), ...intents.map((intent) => intent.name)])];
  // `elsewhere`: names recorded in another run directory of this file (its last one): valid names, acted on there.
  const chosen = namesRecords(choice)
    ? selectTargets(instances, [...new Set([...recordedNames, ...elsewhere])], selection)
    : { instances: selectInstances(instances, selection), recorded: [] };
  const recordFor = (name: string): InstanceRecord | null => records.find((record) => record.name === name) ?? null;
  const unreadableRecord = (name: string): string | null => read.unreadable?.get(name) ?? null;
  const intentFor = (name: string): LaunchIntent | null => intents.find((intent) => intent.name === name) ?? null;
  // Whether a master started after the recorded one, named by the record's pidfile, is its successor (inspect.ts).
  // Set only where it differs from what inspect.ts assumes without it (see DeclaredTarget.recordPidfileProves).
  const recordProof = (record: InstanceRecord | null, assumed: boolean): { recordPidfileProves?: boolean } => {
    const proves = record !== null && isInRunDirectory(record.pidfile, runDir);
    return proves === assumed ? {} : { recordPidfileProves: proves };
  };
  const targets: Target[] = chosen.instances.map((instance): Target => {
    const record = recordFor(instance.name);
    const foreignRecord = foreign.get(instance.name);
    if (foreignRecord !== undefined && record === null) {
      // Its name, pidfile and record paths are another file's here: nothing of it can be proven ours,
      // and a start would overwrite the other file's pidfile and record.
      return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason: foreignRecord, record: null, pidfileProves: false };
    }
    const pidfileProves = isInRunDirectory(instance.pidfile, runDir);
    if (!isUsable(instance)) return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason: describeUnusable(instance), record, pidfileProves, ...recordProof(record, pidfileProves) };
    const checked = preflight?.instances.get(instance.name);
    if (checked !== undefined && checked.problems.length > 0) {
      // Refused before anything is touched: not started, and a restart leaves the running one as it is.
      return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason: checked.problems.join('; '), record, pidfileProves, ...recordProof(record, pidfileProves) };
    }
    const facts = checked?.facts ?? { pools: [], errorLog: null };
    return {
      kind: 'declared', name: instance.name, instance, record, intent: intentFor(instance.name), recordProblem: unreadableRecord(instance.name), pidfileProves,
      ...recordProof(record, pidfileProves && record?.pidfile === instance.pidfile),
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
      targets.push({ kind: 'orphan', name: record.name, record, why: fileKnown ? 'undeclared' : 'file-unusable', ...recordProof(record, false) });
    } else if (isUsable(disabled)) {
      targets.push({
        kind: 'declared', name: disabled.name, instance: disabled, record, intent, recordProblem: null, pidfileProves: isInRunDirectory(disabled.pidfile, runDir),
        ...recordProof(record, isInRunDirectory(disabled.pidfile, runDir) && record.pidfile === disabled.pidfile),
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

/** A run directory of this file other than the one it names now: the one its last start used. */
export interface PreviousRunDir {
  runDir: string;
  /** Why it is looked at: the file is unusable, or FPM_run_dir changed. */
  why: string;
  /**
   * The file's default run directory looked at without a pointer (FPM_run_dir set since its
   * instances started there): only records that name this file count, for a record without a file
   * there may be another file's of the same name.
   */
  strict?: boolean;
}

/**
 * For stop and status: the run directory the file's last start remembered (src/process/last-run-dir.ts)
 * when it is not the one the file names now (or the file is unusable); null otherwise.
 */
export async function findPreviousRunDir(system: System, context: CommandContext, declared: Declared, file: string): Promise<PreviousRunDir | null> {
  const defaultDir = defaultRunDir(declared.conf, context.io.env, chooseRunDirUid(system, declared.conf));
  if (defaultDir === null) return null;
  const last = await readLastRunDir(system, defaultDir, file);
  if (last === null && declared.unusable === null && path.normalize(defaultDir) !== path.normalize(declared.runDir)) {
    // FPM_run_dir set while instances started without it run: they are recorded in the default one.
    return { runDir: path.normalize(defaultDir), why: `FPM_run_dir changed while instances run (they were started in the default run directory ${defaultDir}; the file now names ${declared.runDir})`, strict: true };
  }
  if (last === null || last === path.normalize(declared.runDir)) return null;
  const why = declared.unusable !== null
    ? `${declared.conf} is unusable, and its last start used ${last}`
    : `FPM_run_dir changed while instances run (its last start used ${last}; the file now names ${declared.runDir})`;
  return { runDir: last, why };
}

/**
 * An unusable file and no record of it anywhere: what runs cannot be told (status exits 4, stop
 * fails), never "nothing runs" (tryout 2 finding 3).
 */
export function describeNothingRecorded(declared: Declared, previous: PreviousRunDir | null): string {
  const where = previous === null ? declared.runDir : `${declared.runDir} nor ${previous.runDir}`;
  return `cannot tell what runs: ${declared.conf} is unusable and no records were found (in ${where}); ` +
    `fix the file (php-fpm-multi check says what is wrong), then run the command again`;
}

/** The warning when records of this file are found in its previous run directory. */
export function describePreviousRunDir(previous: PreviousRunDir, names: readonly string[]): string {
  return `records of ${names.join(', ')} are in ${previous.runDir}: ${previous.why}; acting on them there`;
}

/**
 * The targets of this file's previous run directory: only what is recorded there (the declared
 * instances are the main run directory's), valid names of both directories accepted.
 */
export function choosePreviousTargets(
  declared: Declared, previous: PreviousRunDir, read: RecordsRead, selection: readonly string[], choice: TargetChoice, mainNames: readonly string[],
): Target[] {
  const recorded = new Set(namesIn(read));
  if (recorded.size === 0) return [];
  return chooseTargets({ ...declared, runDir: previous.runDir }, read, selection, choice, null, mainNames).targets.filter((target) => recorded.has(target.name));
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

/**
 * Reads what a read-only command (status, health, status --pools) needs: the declaration, the
 * run directory's trust (before anything in it is read), its records, and the targets.
 */
export async function prepareTargets(system: System, context: CommandContext, choice: TargetChoice, requirement: Requirement): Promise<Prepared> {
  const declared = loadDeclaration(context, requirement);
  checkSelection(declared, choice, context.selection);
  const preflight = await runDeclaredPreflight(system, declared, context.selection, requirement, context.io.env['PATH']);
  const file = await resolveDeclarationFile(system, declared.conf);
  const exists = await trustRunDirectory(system, declared.runDir, false);
  const read = exists ? await readRunDirectoryRecords(system, declared.runDir, file) : { records: [], problems: [] };
  if (requirement !== 'records') return { ...chooseTargets(declared, read, context.selection, choice, preflight), file, previous: null };
  const found = await readPreviousRunDir(system, context, declared, file);
  const prepared = chooseTargets(declared, read, context.selection, choice, preflight, found === null ? [] : namesIn(found.read));
  const used = (exists && (await holdsControllerState(system, declared.runDir))) || found?.used === true;
  if (found === null) return { ...prepared, file, previous: null, used };
  const targets = choosePreviousTargets(declared, found.previous, found.read, context.selection, choice, namesIn(read));
  return {
    ...prepared, file, targets: withoutShadowed(prepared.targets, targets), recordProblems: [...prepared.recordProblems, ...found.problems],
    previous: { ...found.previous, targets }, used,
  };
}

/** The previous run directory of this file and what it holds of it (trust checked first); null when there is none. */
export async function readPreviousRunDir(
  system: System, context: CommandContext, declared: Declared, file: string,
): Promise<{ previous: PreviousRunDir; read: RecordsRead; problems: string[]; used: boolean } | null> {
  const previous = await findPreviousRunDir(system, context, declared, file);
  if (previous === null) return null;
  try {
    if (!(await trustRunDirectory(system, previous.runDir, false))) return null;
    const all = await readRunDirectoryRecords(system, previous.runDir, file);
    if (previous.strict === true) {
      // Only what names this file; nothing else there is reported either (it is the directory of every file of this name).
      const named = (written: { declaration?: string }): boolean => written.declaration === file;
      const read = { records: all.records.filter(named), intents: (all.intents ?? []).filter(named), problems: [] };
      return read.records.length + read.intents.length === 0 ? null : { previous, read, problems: [], used: true };
    }
    const read = all;
    return { previous, read, problems: [...read.problems, ...(read.foreign?.values() ?? [])], used: await holdsControllerState(system, previous.runDir) };
  } catch (error) {
    if (!(error instanceof FpmMultiError)) throw error;
    if (previous.strict === true) return null; // only looked at in case: nothing proves a record of this file is there
    // Its last run directory cannot be trusted now: said, and only FPM_run_dir's records are used.
    return { previous, read: { records: [], problems: [] }, problems: [`${previous.why}, but it cannot be read: ${error.message}`], used: false };
  }
}

/**
 * A declared instance with nothing recorded in the run directory the file names now, while its
 * previous run directory holds its record: the previous one is what runs (or ran), so it alone
 * stands for the instance.
 */
export function withoutShadowed(targets: readonly Target[], previous: readonly Target[]): Target[] {
  const elsewhere = new Set(previous.map((target) => target.name));
  return targets.filter((target) => !(elsewhere.has(target.name) && target.kind === 'declared' && target.record === null && target.intent === null));
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
