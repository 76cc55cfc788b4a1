// Which targets a process-control command acts on (chooseTargets): the declared instances it
// selects and, as its TargetChoice says, what else is recorded in the run directory (orphans,
// disabled instances started by name, interrupted launches); and the refusal of nothing to act on.
import { NotConfiguredError } from '../errors.js';
import type { Instance } from '../model/instance.js';
import { isUsable, type Preflight } from './preflight.js';
import type { InstanceRecord, LaunchIntent } from './record.js';
import { selectInstances, selectTargets } from '../model/selection.js';
import { isInRunDirectory, type Target } from './target.js';
import type { Declared, RecordsRead } from './declaration.js';

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

/** Refuses a declaration that cannot be acted on before anything is read from its run directory. */
export function checkSelection(declared: Declared, choice: TargetChoice, selection: readonly string[]): void {
  // Names that may be recorded are checked once the records are read (under the lock).
  if (!namesRecords(choice) && declared.model !== null) selectInstances(declared.model.instances, selection);
}

/** Why a declared instance cannot be acted on; null when it can. */
function describeUnusable(instance: Instance): string {
  return instance.problems.join('; ') || 'its php-fpm binary, config or pidfile is unknown';
}

/** What chooseTargets makes of the declaration and the records of its run directory. */
export interface Chosen {
  declared: Declared;
  runDir: string;
  targets: Target[];
  /** Records that could not be read: reported, never trusted. */
  recordProblems: string[];
  /** Whole-run refusals found by the preflight (shared files, listen collisions); [] without it. */
  collisions: string[];
}

/**
 * The targets a command chooses (see TargetChoice) from the declaration and the records read from
 * its run directory (after the lock was taken, for commands that take it: a record written by a
 * command that held the lock must be seen). With an unusable file, only the records are targets.
 */
export function chooseTargets(
  declared: Declared, read: RecordsRead, selection: readonly string[], choice: TargetChoice, preflight: Preflight | null = null,
  elsewhere: readonly string[] = [],
): Chosen {
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
