// start, stop, restart, reload, reopen and configtest: each reads the declaration, checks the run
// directory's trust, takes the controller lock, reads the records, runs the operation on every
// target in parallel and reports each outcome (runOperation).
import { posix as path } from 'node:path';
import type { CommandContext, Io } from '../cli/command.js';
import type { ControlContext, Outcome } from '../process/control.js';
import { testConfig } from '../process/control.js';
import { describeErrno, FpmMultiError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { reloadInstance, reopenInstance } from '../process/reload.js';
import { describeOrphanHolding, describeRestartRefusal } from '../process/restart.js';
import { startInstance } from '../process/start.js';
import { stopTarget } from '../process/stop.js';
import { restartWithHandover, withoutHandover } from '../process/handover.js';
import { acquireLock, LOCK_WAIT_TIMEOUT_MS } from '../process/lock.js';
import { DEFAULT_START_TIMEOUT_S, DEFAULT_STOP_TIMEOUT_S } from '../model/instance.js';
import { runAtPace, type Pace } from '../process/parallel.js';
import { preflightInstance } from '../process/checks.js';
import { refuseCollisions } from '../process/preflight.js';
import { removeStartFailure, writeStartFailure } from '../process/record.js';
import { holdIfSupervised, removeHeldMark } from '../supervisor/marks.js';
import { inspectUnusable } from '../process/inspect.js';
import { refuseRootRunDirectory, trustRunDirectory } from '../process/run-directory.js';
import { errnoCode, type System } from '../process/system.js';
import { afterStop, hasRecord, unhandled, type DeclaredTarget, type Target, type UnusableTarget } from '../process/target.js';
import { checkSelection, chooseTargets, reachesRecords, requireInstances, type TargetChoice } from '../process/choice.js';
import {
  describeUnusableFile, holdsControllerState, loadDeclaration, namesIn, readRunDirectoryRecords, requires, resolveDeclarationFile, runDeclaredPreflight,
  type Declared, type Requirement,
} from '../process/declaration.js';
import { choosePreviousTargets, describeNothingRecorded, describePreviousRunDir, readPreviousRunDir, withoutShadowed } from '../process/previous-run-dir.js';
import { defaultRunDir } from '../model/build.js';
import { chooseRunDirUid } from '../model/load.js';
import { ProcessTable } from '../process/terminate.js';
import { reportError, reportInfo, reportWarning } from '../cli/reporter.js';

/** A command that acts on instances: what it needs, which targets, at what pace, and what it does to one. */
interface Operation {
  /** Past participle for the summary: "started". */
  verb: string;
  requirement: Requirement;
  choice: TargetChoice;
  pace: Pace;
  /** Acts on one target, whatever its kind (each operation switches on it). */
  act: (control: ControlContext, target: Target) => Promise<Outcome>;
  /** What refuses the whole run once the records are read, before any target is acted on; null when nothing does. */
  refuse?: (control: ControlContext, targets: readonly Target[]) => Promise<string | null>;
  /** Runs once, on every target, before any `act` (restart's config tests, before anything stops). */
  prepare?: (control: ControlContext, targets: readonly Target[]) => Promise<void>;
}

function reportOutcome(io: Io, outcome: Outcome): void {
  if (outcome.ok) reportInfo(io, `${outcome.name}: ${outcome.message}`);
  else reportError(io, `${outcome.name}: ${outcome.message}`);
}

/**
 * A declared instance with problems and no record: stopping it succeeds only if it is not running.
 * With its pidfile outside the run directory nothing proves this file ever started it: it succeeds.
 */
async function stopUnusable(control: ControlContext, target: UnusableTarget): Promise<Outcome> {
  const inspection = await inspectUnusable(control.system, target.pidfile, target.reason, target.pidfileProves);
  if (!target.pidfileProves) return { name: target.name, ok: true, message: `not running; no record of ${control.conf ?? 'this declaration file'} (and ${inspection.detail})` };
  return inspection.state === 'stopped'
    ? { name: target.name, ok: true, message: `not running (and ${inspection.detail})` }
    : { name: target.name, ok: false, message: `cannot be checked: ${target.reason}` };
}

/** For the commands that act only on usable declared instances: every other kind is a named failure. */
function onDeclared(verb: string, act: (control: ControlContext, target: DeclaredTarget) => Promise<Outcome>): Operation['act'] {
  return async (control, target) => {
    switch (target.kind) {
      case 'declared':
        return act(control, target);
      case 'unusable':
        return { name: target.name, ok: false, message: `not ${verb}: ${target.reason}` };
      case 'orphan':
      case 'launched':
        return { name: target.name, ok: false, message: `not ${verb}: it is no longer declared in the file` };
      default:
        return unhandled(target);
    }
  };
}

async function actSafely(operation: Operation, control: ControlContext, target: Target): Promise<Outcome> {
  try {
    return await operation.act(control, target);
  } catch (error) {
    // One instance's failure never stops the others.
    if (error instanceof FpmMultiError) return { name: target.name, ok: false, message: error.message };
    // A file the system refused (EACCES on a root pidfile, ENOSPC, EROFS): a named failure of
    // this instance, never an "internal error" that abandons the others.
    const code = errnoCode(error);
    if (code !== undefined) {
      const file = (error as NodeJS.ErrnoException).path;
      const fix = code === 'EACCES' || code === 'EPERM'
        ? (control.system.uid === 0 ? 'check its permissions' : 'it belongs to another user: run it as root, or use files of your own')
        : 'free or fix the file system, then run the command again';
      return { name: target.name, ok: false, message: `not ${operation.verb}: ${file ?? 'a file'}: ${describeErrno(error)}; ${fix}` };
    }
    throw error;
  }
}

/** Long enough for another command to finish starting and stopping everything it holds. */
function chooseLockWaitMs(declared: Declared): number {
  const longest = Math.max(
    (DEFAULT_START_TIMEOUT_S + DEFAULT_STOP_TIMEOUT_S) * 1000,
    ...(declared.model?.instances ?? []).map((instance) => instance.startTimeoutMs + instance.stopTimeoutMs),
  );
  return Math.max(LOCK_WAIT_TIMEOUT_MS, longest + LOCK_WAIT_TIMEOUT_MS);
}

/**
 * For `stop`: a clean-up the file system refuses (read-only) does not undo a stop that happened.
 * Removing a pidfile, record or failure note that fails with EROFS becomes a warning.
 */
function tolerateReadOnlyCleanUp(system: System, warnings: string[]): System {
  const unlink = async (file: string): Promise<void> => {
    try {
      await system.unlink(file);
    } catch (error) {
      if (errnoCode(error) !== 'EROFS') throw error;
      // A read-only file system refuses the unlink of a file that is not there too: nothing to say.
      try {
        await system.lstat(file);
      } catch (missing) {
        if (errnoCode(missing) === 'ENOENT') return;
      }
      // Nothing on a read-only run directory can tell a clean stop from a crash afterwards: the
      // record and the pidfile stay, naming a master that is gone. Said plainly, with the way out.
      warnings.push(
        file.endsWith('.record.json')
          ? `could not remove ${file} (read-only file system, EROFS): until it is removed, status shows ${path.basename(file, '.record.json')} as crashed (exit 32) and start says it had crashed; once the file system is writable, run php-fpm-multi stop again: it clears it`
          : `could not remove ${file} (read-only file system, EROFS); once the file system is writable, run php-fpm-multi stop again: it clears it`,
      );
    }
  };
  // A proxy, not a copy: a System may be a class instance whose methods need their own `this`.
  return new Proxy(system, {
    get(target, property) {
      if (property === 'unlink') return unlink;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * prepare → lock → act on every target at the operation's pace → report. The order matters: the
 * declaration is read (pure) and the run directory's trust checked before anything in it is read;
 * the lock is taken before the records are read, so that a record written by a command that held
 * the lock (`start i2`) is seen by the command that waited (`stop`).
 */
async function runOperation(context: CommandContext, operation: Operation): Promise<Outcome[]> {
  const { io } = context;
  const { verb, requirement, choice } = operation;
  const real = io.system;
  const warnings: string[] = [];
  // A command that needs only the records is a shutdown: a clean-up refused by a read-only file system does not undo it.
  const system = requires(requirement, 'declaration') ? real : tolerateReadOnlyCleanUp(real, warnings);
  const declared = loadDeclaration(context, requirement);
  if (declared.unusable !== null) reportWarning(io, describeUnusableFile(declared));
  checkSelection(declared, choice, context.selection);
  const preflight = await runDeclaredPreflight(system, declared, context.selection, requirement, io.env['PATH']);
  if (requires(requirement, 'no-collisions')) refuseCollisions(preflight ?? { collisions: [] }, verb);
  // Without records among its targets, nothing to act on is known before anything is touched.
  const noRecords = { records: [], problems: [] };
  if (requires(requirement, 'declaration') && !reachesRecords(choice)) requireInstances(chooseTargets(declared, noRecords, context.selection, choice, preflight), verb);
  await refuseRootRunDirectory(system, declared.conf, declared.runDir, verb);
  const file = await resolveDeclarationFile(real, declared.conf);
  // stop (only records needed) creates nothing: no run directory, and no lock where nothing is
  // recorded (tryout 2 finding 10g). The commands that start create the run directory.
  const shutdown = !requires(requirement, 'declaration');
  const exists = await trustRunDirectory(system, declared.runDir, !shutdown);
  const locks: Array<{ release(): Promise<void> }> = [];
  try {
    const used = exists && (await holdsControllerState(system, declared.runDir));
    if (exists && (!shutdown || used)) {
      locks.push(await acquireLock(system, path.join(declared.runDir, 'lock'), { waitMs: chooseLockWaitMs(declared) }));
    }
    const read = exists ? await readRunDirectoryRecords(system, declared.runDir, file) : { records: [], problems: [] };
    // stop also reaches what this file's last start recorded elsewhere (the file is unusable, or FPM_run_dir changed).
    let found = shutdown ? await readPreviousRunDir(system, context, declared, file) : null;
    if (found !== null && found.read.records.length + (found.read.intents?.length ?? 0) > 0 && (await holdsControllerState(system, found.previous.runDir))) {
      // Read again under that directory's lock, as for the run directory itself.
      locks.push(await acquireLock(system, path.join(found.previous.runDir, 'lock'), { waitMs: chooseLockWaitMs(declared) }));
      found = await readPreviousRunDir(system, context, declared, file);
    }
    const main = chooseTargets(declared, read, context.selection, choice, preflight, found === null ? [] : namesIn(found.read));
    const elsewhere = found === null ? [] : choosePreviousTargets(declared, found.previous, found.read, context.selection, choice, namesIn(read));
    const prepared = { ...main, targets: withoutShadowed(main.targets, elsewhere) };
    if (requires(requirement, 'declaration')) requireInstances(prepared, verb);
    for (const problem of [...prepared.recordProblems, ...(found?.problems ?? [])]) reportWarning(io, problem);
    if (found !== null && elsewhere.length > 0) reportWarning(io, describePreviousRunDir(found.previous, elsewhere.map((target) => target.name)));
    if (declared.unusable !== null && prepared.targets.length === 0 && elsewhere.length === 0 && !used && found?.used !== true) {
      // Nothing recorded anywhere: "nothing to stop" would be a guess, and a shutdown must not look clean.
      throw new FpmMultiError(describeNothingRecorded(declared, found?.previous ?? null), EXIT_FAILURE);
    }
    const control: ControlContext = {
      system, runDir: prepared.runDir, path: io.env['PATH'], conf: context.conf, declaration: file, records: read.records, processes: new ProcessTable(system),
    };
    if (requires(requirement, 'no-collisions')) {
      // Where stop and status find this file's records should it become unusable or FPM_run_dir change.
      const { rememberRunDir } = await import('../process/last-run-dir.js');
      const failed = await rememberRunDir(system, defaultRunDir(declared.conf, io.env, chooseRunDirUid(system, declared.conf)), file, declared.runDir);
      if (failed !== null) warnings.push(failed);
    }
    const previousControl: ControlContext | null = found === null ? null : { ...control, runDir: found.previous.runDir };
    const located = [
      ...prepared.targets.map((target) => ({ target, control })),
      ...(previousControl === null ? [] : elsewhere.map((target) => ({ target, control: previousControl }))),
    ];
    const refusal = operation.refuse === undefined ? null : await operation.refuse(control, prepared.targets);
    if (refusal !== null) throw new FpmMultiError(refusal, EXIT_FAILURE);
    await operation.prepare?.(control, prepared.targets);
    const outcomes = await runAtPace(located, operation.pace, async ({ target, control: where }) => {
      const outcome = await actSafely(operation, where, target);
      reportOutcome(io, outcome);
      return outcome;
    });
    if (found !== null && shutdown) {
      // Nothing of this file left in its previous run directory: the pointer has served.
      const { forgetRunDir } = await import('../process/last-run-dir.js');
      await forgetRunDir(system, defaultRunDir(declared.conf, io.env, chooseRunDirUid(system, declared.conf)), file, found.previous.runDir);
    }
    return outcomes;
  } finally {
    for (const lock of locks.reverse()) await lock.release();
    for (const warning of warnings) reportWarning(io, warning);
  }
}

/** A failed start is remembered for `status` until a start or a stop of the instance succeeds. */
async function rememberStart(control: ControlContext, outcome: Outcome): Promise<Outcome> {
  // An admin's start (or restart) puts the instance back under a running supervisor.
  await removeHeldMark(control.system, control.runDir, outcome.name);
  if (outcome.ok) await removeStartFailure(control.system, control.runDir, outcome.name);
  else await writeStartFailure(control.system, control.runDir, outcome.name, { atMs: control.system.now(), message: outcome.message });
  return outcome;
}

function summarize(io: Io, verb: string, outcomes: readonly Outcome[]): number {
  const failed = outcomes.filter((outcome) => !outcome.ok);
  if (failed.length === 0) return EXIT_OK;
  reportError(io, `not ${verb}: ${failed.map((o) => o.name).join(', ')} (${failed.length} of ${outcomes.length})`);
  return EXIT_FAILURE;
}

/** What start, reload, reopen and configtest share: the selected declared instances, bounded work. */
const ON_SELECTED = { choice: 'selected', pace: 'works' } as const;

export async function start(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    ...ON_SELECTED,
    verb: 'started',
    requirement: 'no-collisions',
    act: onDeclared('started', async (control, target) => rememberStart(control, await startInstance(control, target))),
  });
  const code = summarize(context.io, 'started', outcomes);
  // --partial (the OpenRC runscript): the service is up while anything runs, so that a later
  // stop reaches it; the failed instances are named above and `status` reports them.
  if (context.partial && outcomes.some((outcome) => outcome.ok)) return EXIT_OK;
  return code;
}

/** Stops a target and forgets a failed start of it once it is stopped. */
async function stopAndForget(control: ControlContext, target: Target): Promise<Outcome> {
  if (target.kind === 'unusable' && !hasRecord(target)) return stopUnusable(control, target);
  const outcome = await stopTarget(control, target);
  if (outcome.ok) await removeStartFailure(control.system, control.runDir, target.name);
  // Held down: a running supervisor leaves it stopped until a start (src/supervisor/marks.ts).
  if (outcome.ok) await holdIfSupervised(control.system, control.runDir, target.name);
  return outcome;
}

export async function stop(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    verb: 'stopped', requirement: 'records', choice: 'everything-recorded', pace: 'waits', act: stopAndForget,
  });
  return summarize(context.io, 'stopped', outcomes);
}

/**
 * Restart: a declared instance is tested, stopped and started; an orphan is only stopped. Every
 * config test runs before anything is stopped (`tests`, filled by testBeforeRestart), so that the
 * gap between stop and start holds no config test: the start half trusts the test made before.
 */
async function restartTarget(control: ControlContext, target: Target, tests: ReadonlyMap<string, Outcome>): Promise<Outcome> {
  switch (target.kind) {
    case 'orphan':
    case 'launched':
      // No longer declared: only stopped. (A restart refuses an unusable file before this.)
      return target.why === 'undeclared' ? stopTarget(control, target) : { name: target.name, ok: false, message: 'not restarted, left as it was: the declaration file is unusable' };
    case 'unusable': {
      if (hasRecord(target)) {
        // Everything start would refuse (e.g. a `pid =` line) refuses before the stop.
        return { name: target.name, ok: false, message: `not restarted, left as it was: ${target.reason}` };
      }
      // Nothing recorded to stop; asked to restart it, the controller cannot start it: a failure, as for start.
      const stopped = await stopUnusable(control, target);
      return stopped.ok ? { name: target.name, ok: false, message: `not restarted: it does not run, and it cannot be started: ${target.reason}` } : stopped;
    }
    case 'declared': {
      // A disabled instance that runs (started by name) is reached through its record; the
      // whole-run preflight skipped it unless named: its facts (pools to wait for) and what start
      // refuses are read now, before anything is stopped.
      if (!target.instance.enabled) {
        const { readFpmConfig } = await import('../php-fpm/config/load.js');
        const checked = await preflightInstance(control.system, control.runDir, target.instance, { readFpmConfig, path: control.path });
        if (checked.problems.length > 0) return { name: target.name, ok: false, message: `not restarted, left as it was: ${checked.problems.join('; ')}` };
        target = { ...target, pools: checked.facts.pools, errorLog: checked.facts.errorLog };
      }
      // The config test comes first: a broken config never takes a running instance down.
      const test = tests.get(target.name) ?? (await testConfig(control, target.instance));
      if (!test.ok) return { ...test, message: `not restarted, left as it was: ${test.message}` };
      // What would make the start half fail once the stop is done: left serving instead.
      const refusal = await describeRestartRefusal(control, target);
      if (refusal !== null) return { name: target.name, ok: false, message: `not restarted, left as it was: ${refusal}` };
      // The new master takes over the listening sockets while the old one serves (src/process/handover.ts);
      // where that does not apply (TCP, no pools read, not running, a directory others may write), stop and start.
      const handed = await restartWithHandover(control, target);
      if (handed.kind === 'handed') {
        if (handed.outcome.ok) await removeStartFailure(control.system, control.runDir, target.name);
        return handed.outcome;
      }
      const stopped = await stopTarget(control, target);
      if (!stopped.ok) return withoutHandover(stopped, handed);
      return withoutHandover(await rememberStart(control, await startInstance(control, afterStop(target))), handed);
    }
    default:
      return unhandled(target);
  }
}

/** php-fpm's config test of every declared target, all before the first stop (at the 'works' pace). */
async function testBeforeRestart(control: ControlContext, targets: readonly Target[], tests: Map<string, Outcome>): Promise<void> {
  const declared = targets.filter((target): target is DeclaredTarget => target.kind === 'declared');
  const outcomes = await runAtPace(declared, 'works', (target) => testConfig(control, target.instance));
  declared.forEach((target, index) => tests.set(target.name, outcomes[index]!));
}

export async function restart(context: CommandContext): Promise<number> {
  const tests = new Map<string, Outcome>();
  const outcomes = await runOperation(context, {
    verb: 'restarted', requirement: 'no-collisions', choice: 'selected-and-recorded',
    // --rolling: one instance at a time, so that the others keep serving while it is down.
    pace: context.rolling === true ? 'one-at-a-time' : 'works',
    prepare: (control, targets) => testBeforeRestart(control, targets, tests),
    act: (control, target) => restartTarget(control, target, tests),
    refuse: describeOrphanHolding,
  });
  return summarize(context.io, 'restarted', outcomes);
}

export async function reload(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    // Everything check reports refuses a reload before its signal, colliding instances included:
    // a re-executed master that cannot bind its address exits, and the instance is down.
    ...ON_SELECTED, verb: 'reloaded', requirement: 'no-collisions', act: onDeclared('reloaded', reloadInstance),
  });
  return summarize(context.io, 'reloaded', outcomes);
}

export async function reopen(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, { ...ON_SELECTED, verb: 'reopened', requirement: 'declaration', act: onDeclared('reopened', reopenInstance) });
  return summarize(context.io, 'reopened', outcomes);
}

export async function configtest(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    ...ON_SELECTED, verb: 'tested', requirement: 'fpm-configs', act: onDeclared('tested', (control, target) => testConfig(control, target.instance)),
  });
  return summarize(context.io, 'tested', outcomes);
}
