// start, stop, restart, reload, reopen and configtest: each reads the declaration, checks the run
// directory's trust, takes the controller lock, reads the records, runs the operation on every
// target in parallel and reports each outcome (runOperation).
import { posix as path } from 'node:path';
import type { CommandContext, Io } from '../cli/command.js';
import {
  reloadInstance, reopenInstance, startInstance, stopTarget, testConfig, type ControlContext, type Outcome,
} from '../process/controller.js';
import { FpmMultiError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { acquireLock, LOCK_WAIT_TIMEOUT_MS } from '../process/lock.js';
import { DEFAULT_START_TIMEOUT_S, DEFAULT_STOP_TIMEOUT_S } from '../model/model.js';
import { mapBounded, MAX_PARALLEL_OPERATIONS } from '../process/parallel.js';
import { removeStartFailure, writeStartFailure } from '../process/record.js';
import { removeHeldMark, writeHeldMark } from '../supervisor/marks.js';
import { inspectUnusable } from '../process/inspect.js';
import { describeErrno, refuseRootRunDirectory, trustRunDirectory } from '../process/run-directory.js';
import { createRealSystem, errnoCode, type System } from '../process/system.js';
import {
  buildTargets, checkSelection, describeUnusableFile, loadDeclaration, readRunDirectoryRecords, refuseCollisions, runDeclaredPreflight,
  requireInstances, type Declared, type PrepareOptions, type PreparedTarget,
} from '../process/targets.js';

type Operate = (control: ControlContext, target: PreparedTarget) => Promise<Outcome>;

interface OperationSpec extends PrepareOptions {
  /** Past participle for the summary: "started". */
  verb: string;
  /** Refuse the whole run when instances would collide (commands that launch php-fpm). */
  refuseCollisions: boolean;
  /** Whether a target known only by its record can be acted on (stop can; start cannot). */
  acceptsRecordOnly: boolean;
  /** Stopping nothing succeeds; starting nothing is a declaration without instances. */
  needsInstances: boolean;
  /**
   * `stop` goes on with an unusable declaration file, from the records alone (a typo must never
   * block a shutdown); every other command refuses it.
   */
  tolerateUnusable: boolean;
  /** Stopping is waiting, not work: every instance at once. Default MAX_PARALLEL_OPERATIONS. */
  concurrency?: number;
  operate: Operate;
}

function reportOutcome(io: Io, outcome: Outcome): void {
  if (outcome.ok) io.stdout(`php-fpm-multi: ${outcome.name}: ${outcome.message}\n`);
  else io.stderr(`php-fpm-multi: ${outcome.name}: ${outcome.message}\n`);
}

/** A declared instance with problems and no record: stopping it succeeds only if it is not running. */
async function stopUnusable(system: System, target: PreparedTarget, unusable: string): Promise<Outcome> {
  const inspection = await inspectUnusable(system, target.pidfile, unusable);
  return inspection.state === 'stopped'
    ? { name: target.name, ok: true, message: `not running (and ${inspection.detail})` }
    : { name: target.name, ok: false, message: `cannot be checked: ${unusable}` };
}

async function operateSafely(spec: OperationSpec, control: ControlContext, target: PreparedTarget): Promise<Outcome> {
  try {
    if (target.unusable !== null && !(spec.acceptsRecordOnly && target.record !== null)) {
      return spec.acceptsRecordOnly ? await stopUnusable(control.system, target, target.unusable) : { name: target.name, ok: false, message: `not ${spec.verb}: ${target.unusable}` };
    }
    if (target.instance === null && !spec.acceptsRecordOnly) {
      return { name: target.name, ok: false, message: `not ${spec.verb}: it is no longer declared in the file` };
    }
    return await spec.operate(control, target);
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
      return { name: target.name, ok: false, message: `not ${spec.verb}: ${file ?? 'a file'}: ${describeErrno(error)}; ${fix}` };
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
      warnings.push(`could not remove ${file} (read-only file system, EROFS); remove it once the file system is writable`);
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
 * The order matters: the declaration is read (pure) and the run directory's trust checked before
 * anything in it is read; the lock is taken before the records are read, so that a record written
 * by a command that held the lock (`start i2`) is seen by the command that waited (`stop`).
 */
async function runOperation(context: CommandContext, spec: OperationSpec): Promise<Outcome[]> {
  const { io } = context;
  const real = io.system ?? createRealSystem();
  const warnings: string[] = [];
  const system = spec.tolerateUnusable ? tolerateReadOnlyCleanUp(real, warnings) : real;
  const declared = loadDeclaration(context, spec.tolerateUnusable);
  if (declared.unusable !== null) io.stderr(`php-fpm-multi: ${describeUnusableFile(declared)}\n`);
  checkSelection(declared, spec, context.selection);
  const preflight = spec.readFpmConfigs ? await runDeclaredPreflight(system, declared, context.selection, spec, io.env['PATH']) : null;
  const noRecords = { records: [], problems: [] };
  if (spec.refuseCollisions) refuseCollisions(buildTargets(declared, noRecords, [], spec, preflight));
  // Without records among its targets, nothing to act on is known before anything is touched.
  if (spec.needsInstances && !spec.includeRecorded) requireInstances(buildTargets(declared, noRecords, context.selection, spec, preflight), spec.verb);
  await refuseRootRunDirectory(system, declared.conf, declared.runDir, spec.verb);
  // An unusable file names no instance of its own: without a run directory there is nothing
  // recorded to stop, and nothing is created for it.
  if (!(await trustRunDirectory(system, declared.runDir, declared.unusable === null))) return [];
  const lock = await acquireLock(system, path.join(declared.runDir, 'lock'), { waitMs: chooseLockWaitMs(declared) });
  try {
    const prepared = buildTargets(declared, await readRunDirectoryRecords(system, declared.runDir), context.selection, spec, preflight);
    if (spec.needsInstances) requireInstances(prepared, spec.verb);
    for (const problem of prepared.recordProblems) io.stderr(`php-fpm-multi: warning: ${problem}\n`);
    const control: ControlContext = { system, runDir: prepared.runDir, path: io.env['PATH'], conf: context.conf };
    return await mapBounded(prepared.targets, spec.concurrency ?? MAX_PARALLEL_OPERATIONS, async (target) => {
      const outcome = await operateSafely(spec, control, target);
      reportOutcome(io, outcome);
      return outcome;
    });
  } finally {
    await lock.release();
    for (const warning of warnings) io.stderr(`php-fpm-multi: warning: ${warning}\n`);
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
  io.stderr(`php-fpm-multi: not ${verb}: ${failed.map((o) => o.name).join(', ')} (${failed.length} of ${outcomes.length})\n`);
  return EXIT_FAILURE;
}

const ACT_ON_SELECTED = {
  includeRecorded: false, namesRecorded: false, readFpmConfigs: true, refuseCollisions: false, acceptsRecordOnly: false, needsInstances: true, tolerateUnusable: false,
};

export async function start(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    ...ACT_ON_SELECTED,
    verb: 'started',
    refuseCollisions: true,
    operate: async (control, target) => rememberStart(control, await startInstance(control, target, target.errorLog, target.pools)),
  });
  const code = summarize(context.io, 'started', outcomes);
  // --partial (the OpenRC runscript): the service is up while anything runs, so that a later
  // stop reaches it; the failed instances are named above and `status` reports them.
  if (context.partial && outcomes.some((outcome) => outcome.ok)) return EXIT_OK;
  return code;
}

export async function stop(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    verb: 'stopped', includeRecorded: true, namesRecorded: true, readFpmConfigs: false, refuseCollisions: false, acceptsRecordOnly: true,
    needsInstances: false, tolerateUnusable: true,
    // Stopping is waiting for processes to exit, not work: bounding it would make a machine of
    // many slow instances take (instances / bound) × stop_timeout to shut down.
    concurrency: Infinity,
    operate: async (control, target) => {
      const outcome = await stopTarget(control, target);
      if (outcome.ok) await removeStartFailure(control.system, control.runDir, target.name);
      // Held down: a running supervisor leaves it stopped until a start (src/supervisor/marks.ts).
      if (outcome.ok) await writeHeldMark(control.system, control.runDir, target.name);
      return outcome;
    },
  });
  return summarize(context.io, 'stopped', outcomes);
}

export async function restart(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    verb: 'restarted', includeRecorded: true, namesRecorded: false, readFpmConfigs: true, refuseCollisions: true, acceptsRecordOnly: true,
    needsInstances: true, tolerateUnusable: false,
    operate: async (control, target) => {
      if (!target.declared) return stopTarget(control, target); // no longer declared: only stopped
      // Everything start would refuse (target.unusable: e.g. a `pid =` line) refuses before the stop.
      if (target.instance === null || target.unusable !== null) return { name: target.name, ok: false, message: `not restarted, left as it was: ${target.unusable}` };
      // The config test comes first: a broken config never takes a running instance down.
      const test = await testConfig(control, target.instance);
      if (!test.ok) return { ...test, message: `not restarted, left as it was: ${test.message}` };
      const stopped = await stopTarget(control, target);
      if (!stopped.ok) return stopped;
      // The stop removed the record: the one read before it names a master that is gone, not a crash.
      return rememberStart(control, await startInstance(control, { ...target, record: null }, target.errorLog, target.pools));
    },
  });
  return summarize(context.io, 'restarted', outcomes);
}

export async function reload(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    ...ACT_ON_SELECTED, verb: 'reloaded', operate: (control, target) => reloadInstance(control, target, target.errorLog, target.pools),
  });
  return summarize(context.io, 'reloaded', outcomes);
}

export async function reopen(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, { ...ACT_ON_SELECTED, readFpmConfigs: false, verb: 'reopened', operate: reopenInstance });
  return summarize(context.io, 'reopened', outcomes);
}

export async function configtest(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    ...ACT_ON_SELECTED, verb: 'tested', operate: (control, target) => testConfig(control, target.instance!),
  });
  return summarize(context.io, 'tested', outcomes);
}
