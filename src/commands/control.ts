// start, stop, restart, reload, reopen and configtest: each prepares its targets, takes the
// controller lock, runs the operation on every target in parallel and reports each outcome.
import { posix as path } from 'node:path';
import type { CommandContext, Io } from '../command.js';
import {
  reloadInstance, reopenInstance, startInstance, stopTarget, testConfig, type ControlContext, type Outcome,
} from '../controller.js';
import { FpmMultiError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { acquireLock, LOCK_WAIT_TIMEOUT_MS } from '../lock.js';
import { DEFAULT_START_TIMEOUT_S, DEFAULT_STOP_TIMEOUT_S } from '../model.js';
import { mapBounded, MAX_PARALLEL_OPERATIONS } from '../parallel.js';
import { ensureRunDirectory } from '../pidfile.js';
import { removeStartFailure, writeStartFailure } from '../record.js';
import { inspectUnusable } from '../inspect.js';
import { createRealSystem, type System } from '../system.js';
import { prepareTargets, refuseCollisions, requireInstances, type PrepareOptions, type PreparedTarget } from '../targets.js';

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
    throw error;
  }
}

/** Long enough for another command to finish starting and stopping everything it holds. */
function chooseLockWaitMs(targets: readonly PreparedTarget[]): number {
  const longest = Math.max(
    (DEFAULT_START_TIMEOUT_S + DEFAULT_STOP_TIMEOUT_S) * 1000,
    ...targets.map((t) => (t.instance === null ? 0 : t.instance.startTimeoutMs + t.instance.stopTimeoutMs)),
  );
  return Math.max(LOCK_WAIT_TIMEOUT_MS, longest + LOCK_WAIT_TIMEOUT_MS);
}

async function runOperation(context: CommandContext, spec: OperationSpec): Promise<Outcome[]> {
  const { io } = context;
  const system = io.system ?? createRealSystem();
  const prepared = await prepareTargets(system, context, spec);
  if (spec.needsInstances) requireInstances(prepared, spec.verb);
  if (spec.refuseCollisions) await refuseCollisions(prepared);
  for (const problem of prepared.recordProblems) io.stderr(`php-fpm-multi: warning: ${problem}\n`);
  await ensureRunDirectory(system, prepared.runDir);
  const lock = await acquireLock(system, path.join(prepared.runDir, 'lock'), { waitMs: chooseLockWaitMs(prepared.targets) });
  try {
    const control: ControlContext = { system, runDir: prepared.runDir, path: io.env['PATH'], conf: context.conf };
    return await mapBounded(prepared.targets, spec.concurrency ?? MAX_PARALLEL_OPERATIONS, async (target) => {
      const outcome = await operateSafely(spec, control, target);
      reportOutcome(io, outcome);
      return outcome;
    });
  } finally {
    await lock.release();
  }
}

/** A failed start is remembered for `status` until a start or a stop of the instance succeeds. */
async function rememberStart(control: ControlContext, outcome: Outcome): Promise<Outcome> {
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

const ACT_ON_SELECTED = { includeRecorded: false, readFpmConfigs: true, refuseCollisions: false, acceptsRecordOnly: false, needsInstances: true };

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
    verb: 'stopped', includeRecorded: true, readFpmConfigs: false, refuseCollisions: false, acceptsRecordOnly: true, needsInstances: false,
    concurrency: Infinity,
    operate: async (control, target) => {
      const outcome = await stopTarget(control, target);
      if (outcome.ok) await removeStartFailure(control.system, control.runDir, target.name);
      return outcome;
    },
  });
  return summarize(context.io, 'stopped', outcomes);
}

export async function restart(context: CommandContext): Promise<number> {
  const outcomes = await runOperation(context, {
    verb: 'restarted', includeRecorded: true, readFpmConfigs: true, refuseCollisions: true, acceptsRecordOnly: true, needsInstances: true,
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
