// Start, stop, reload and reopen one instance, and adoption of a master of ours found without
// its record. Every signal goes through signalVerified (identity checked against /proc right
// before it); the system is injected. Each takes the kind of target it can act on.
import { FpmMultiError } from '../errors.js';
import { DEFAULT_STOP_TIMEOUT_S } from '../model/instance.js';
import { buildLaunch, type UsableInstance } from '../model/invocation.js';
import {
  bestEffort, describeExit, describeWriteFailure, explainWriteFailure, fail, guarded, measureLog, quoteOutput, readLogSince, succeed, testConfig,
  type ControlContext, type Outcome,
} from './control.js';
import {
  declaredIdentity, inspectTarget, type CrashedInspection, type Inspection, type RunningInspection, type StoppedInspection,
} from './inspect.js';
import { checkPidfileTrust } from './pidfile.js';
import { CLOCK_TICKS_PER_SECOND, listStats, readLiveStat, readProcess, readUptimeTicks, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import { describeNotReady, describeReady, waitForMaster, waitUntilPoolsAnswer } from './readiness.js';
import {
  launchIntentPath, readLaunchIntent, recordPath, removeLaunchIntent, removeRecord, writeLaunchIntent, writeRecord, type InstanceRecord, type LaunchIntent,
} from './record.js';
import { signalVerified, type FpmSignal } from './signal.js';
import { errnoCode, type System } from './system.js';
import { changedLaunchKeys, describeRestartNeeded, launchLinkPath, launchSettingsOf, pointLaunchLink, type LaunchSettings } from './switch.js';
import type { DeclaredTarget, LaunchedTarget, OrphanTarget, Target, UnusableTarget } from './target.js';
import { describeEscalation, endOrphanWorkers, isGone, removePidfileOf, stopMaster, stopMastersOfLaunch } from './terminate.js';
import { describeUnwritable } from './write-probe.js';
import { createListenerProbe, describeHeld, resolveSocketPath, type ListenerProbe } from './listeners.js';
import type { FpmPool } from '../php-fpm/config/types.js';

/** What stop can act on: anything with a record or a usable declaration (an unusable one alone has nothing to verify). */
export type StoppableTarget = DeclaredTarget | OrphanTarget | LaunchedTarget | (UnusableTarget & { record: InstanceRecord });

/** The pidfile inspectTarget reads: the recorded master's (the file may name another since), or the launch's. */
function recordedPidfile(target: StoppableTarget): string {
  switch (target.kind) {
    case 'declared':
      return target.record?.pidfile ?? target.instance.pidfile;
    case 'launched':
      return target.intent.pidfile;
    default:
      return target.record.pidfile;
  }
}

/** The pidfile the instance has now: the declared one, else the record's or the launch's. */
function currentPidfile(target: StoppableTarget): string {
  return target.kind === 'declared' ? target.instance.pidfile : recordedPidfile(target);
}

/** The record a target was found by, if any (a launched one has only its intent). */
function recordOfTarget(target: StoppableTarget): InstanceRecord | null {
  return target.kind === 'launched' ? null : target.record;
}

/** The intent of an interrupted launch a target was found by, if any. */
function intentOfTarget(target: StoppableTarget): LaunchIntent | null {
  return target.kind === 'declared' || target.kind === 'launched' ? target.intent : null;
}

/**
 * How long an empty pidfile must stay empty before start removes it: php-fpm writes its pidfile
 * by unlink + creat + write, so an empty one is either that instant or a write that failed.
 */
const EMPTY_PIDFILE_SETTLE_MS = 500;

/** How a master was launched (src/process/switch.ts): through the controller's symlink, with these settings. */
interface LaunchFacts {
  launchPath: string;
  launched: LaunchSettings;
}

/** The record of a master of ours: what it is, who runs it, which file started it (and, when known, how it was launched). */
function recordOf(ctx: ControlContext, name: string, identity: ExpectedMaster, pidfile: string, master: ProcessInfo, launch?: LaunchFacts): InstanceRecord {
  return {
    name, binary: identity.binary, config: identity.config, pidfile, pid: master.pid, startTimeTicks: master.startTimeTicks, uid: identity.uid ?? ctx.system.uid,
    // Which declaration file started it: another file sharing the run directory never acts on it.
    ...(ctx.declaration === undefined ? {} : { declaration: ctx.declaration }),
    ...(launch === undefined ? {} : { launchPath: launch.launchPath, launched: launch.launched }),
  };
}

/** The launch facts a record keeps, when it has them. */
function launchFactsOf(record: InstanceRecord | null): LaunchFacts | undefined {
  return record?.launchPath === undefined || record.launched === undefined ? undefined : { launchPath: record.launchPath, launched: record.launched };
}

/** Forgets a dead master: its orphaned workers, its pidfile and its record. */
async function cleanUpCrashed(ctx: ControlContext, target: StoppableTarget, inspection: CrashedInspection | StoppedInspection): Promise<string> {
  const found = recordOfTarget(target);
  const binary = inspection.identity?.binary ?? found?.binary;
  // The recorded start time bounds the workers when the dead pid is the recorded one.
  const masterStart = found !== null && found.pid === inspection.pid ? found.startTimeTicks : undefined;
  const ended = inspection.pid !== null && binary !== undefined ? await endOrphanWorkers(ctx.system, ctx.processes, binary, inspection.pid, masterStart) : 0;
  // Best effort: on a full or read-only run directory, stop still succeeds for what is not running.
  const pidfile = recordedPidfile(target);
  const notes = (await bestEffort(pidfile, () => removePidfileOf(ctx.system, pidfile, inspection.pid))) +
    (await bestEffort(recordPath(ctx.runDir, target.name), () => removeRecord(ctx.system, ctx.runDir, target.name)));
  return `${ended > 0 ? `; ended ${ended} orphaned worker${ended === 1 ? '' : 's'}` : ''}${notes}`;
}

/**
 * Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). What is
 * stopped is what the record names (binary, config, start time), whatever the file says now.
 */
async function stopTargetUnguarded(ctx: ControlContext, target: StoppableTarget): Promise<Outcome> {
  const { system } = ctx;
  const inspection = await inspectTarget(system, target);
  const record = recordPath(ctx.runDir, target.name);
  const intent = intentOfTarget(target);
  if (target.kind === 'declared' && target.record === null && intent === null && isUnproven(target, inspection)) {
    if (inspection.state === 'unknown') {
      const master = inspection.unprovenMaster;
      if (master !== undefined) {
        // Its record cannot be read and its pidfile (outside the run directory) names a live master
        // of its identity: maybe the one the record names, maybe another service's. Never signalled,
        // never "not running": a failure that names both and the way out (tryout 2 finding 6).
        const record = recordPath(ctx.runDir, target.name);
        return fail(
          target.name,
          `not stopped: its record ${record} cannot be read, and ${target.instance.pidfile} names a live php-fpm master of ${target.instance.config} (pid ${master.pid}) ` +
            `that php-fpm-multi cannot prove it started, so it was not signalled: if it is this instance, stop it with kill -QUIT ${master.pid}; then remove ${record}`,
        );
      }
      // Its record cannot be read (a planted FIFO), and its pidfile names no master: nothing to signal.
      return succeed(target.name, `not running as far as its pidfile tells; ${inspection.detail}`);
    }
    // Nothing proves this file started a master of it: nothing to stop, whatever its pidfile says.
    const unowned = await findUnownedMasters(ctx, target, inspection);
    return succeed(target.name, `not running; ${unowned.length > 0 ? describeUnowned(ctx, target.instance, unowned) : `no record of ${ctx.conf ?? 'this declaration file'}`}`);
  }
  switch (inspection.state) {
    case 'stopped': {
      if (intent !== null && recordOfTarget(target) === null) {
        // An interrupted launch whose master is not found: once its window is over, it proves nothing more.
        if ((await readUptimeTicks(system)) > intent.deadlineTicks) await removeLaunchIntent(system, ctx.runDir, target.name);
        return succeed(target.name, 'not running');
      }
      if (!inspection.interruptedStop) return succeed(target.name, 'not running');
      // The pidfile may still name the master that stop ended (php-fpm removes it only on a clean exit).
      const pidfile = recordedPidfile(target);
      const notes = (await bestEffort(pidfile, () => removePidfileOf(system, pidfile, inspection.pid))) +
        (await bestEffort(record, () => removeRecord(system, ctx.runDir, target.name)));
      return succeed(target.name, `not running (${inspection.detail}); cleaned up${notes}`);
    }
    case 'unknown':
      return fail(target.name, `not stopped: ${inspection.detail}`);
    case 'stale': {
      const notes = await bestEffort(record, () => removeRecord(system, ctx.runDir, target.name));
      return succeed(target.name, `not running; ${inspection.detail}; nothing was signalled${notes}`);
    }
    case 'crashed':
      return succeed(target.name, `was not running (${inspection.detail})${await cleanUpCrashed(ctx, target, inspection)}`);
    case 'running':
    case 'orphan': {
      const stopTimeoutMs = target.kind === 'declared' ? target.instance.stopTimeoutMs : DEFAULT_STOP_TIMEOUT_S * 1000;
      const pidfile = recordedPidfile(target);
      // The intent first, so that a controller killed mid-stop leaves "stopped", not "crashed".
      // Best effort: a full or read-only run directory must never keep an instance from stopping.
      const running = recordOf(ctx, target.name, inspection.identity, pidfile, inspection.master);
      await bestEffort(record, () => writeRecord(system, ctx.runDir, { ...running, stopping: true }));
      let signal: FpmSignal;
      try {
        signal = await stopMaster(system, await ctx.processes.stats(), inspection.master, inspection.identity, stopTimeoutMs);
      } catch (error) {
        // Not stopped: a later death of this master is a crash again, not the end of a stop.
        await bestEffort(record, () => writeRecord(system, ctx.runDir, running));
        throw error;
      }
      const current = currentPidfile(target);
      const notes = (await bestEffort(pidfile, () => removePidfileOf(system, pidfile, inspection.pid))) +
        (pidfile === current ? '' : await bestEffort(current, () => removePidfileOf(system, current, inspection.pid))) +
        (await bestEffort(record, () => removeRecord(system, ctx.runDir, target.name)));
      // Found through the intent of its interrupted launch: that intent has served.
      if (intent !== null) await removeLaunchIntent(system, ctx.runDir, target.name);
      return succeed(target.name, `stopped (pid ${inspection.pid})${describeEscalation(signal, stopTimeoutMs)}${notes}`);
    }
  }
}

/**
 * Whether nothing proves that this file started a master of a target without a record: its
 * pidfile in the run directory names none (or it lies elsewhere, or its record cannot be read).
 * A pidfile in the run directory that cannot be read or names a dead master is not this case.
 */
function isUnproven(target: DeclaredTarget, inspection: Inspection): boolean {
  if (inspection.state === 'running' || inspection.state === 'orphan') return false;
  return inspection.state === 'stopped' || !target.pidfileProves || (inspection.state === 'unknown' && inspection.unreadableRecord === true);
}

/** Masters of this binary, config and owner that run now (as the command's process table saw them). */
async function findRunningMasters(ctx: ControlContext, expected: ExpectedMaster): Promise<ProcessInfo[]> {
  // Identity first (in memory), then liveness of the few that match: status, stop and check ask
  // this for every instance that does not run, so it must not read /proc per leader each time.
  const matching = (await ctx.processes.leaders()).filter((proc) => verifyIdentity(proc, expected).ok);
  const live = await Promise.all(matching.map(async (proc) => (isGone(proc, await readLiveStat(ctx.system, proc.pid)) ? null : proc)));
  return live.filter((proc): proc is ProcessInfo => proc !== null);
}

/**
 * A master this declaration file cannot prove it started (no record, no pidfile in its run
 * directory naming it): said honestly, with what to do, for start, stop, reload, status and check.
 */
function describeUnowned(ctx: ControlContext, instance: UsableInstance, running: readonly ProcessInfo[]): string {
  // The master may be this file's own, recorded under another name (the instance was renamed):
  // then the way out is stopping that record, not a kill by hand (tryout 2 finding 5).
  for (const proc of running) {
    const recorded = ctx.records?.find((record) => record.pid === proc.pid && record.startTimeTicks === proc.startTimeTicks && record.name !== instance.name);
    if (recorded !== undefined) {
      return `a php-fpm master of ${instance.config} runs (pid ${proc.pid}), recorded by ${ctx.conf ?? 'this declaration file'} as ${recorded.name} ` +
        `(its old name, no longer declared), so it is not this instance's: run php-fpm-multi stop ${recorded.name} first, then start`;
    }
  }
  const pids = running.map((proc) => proc.pid);
  return `a php-fpm master of ${instance.config} runs (pid ${pids.join(', ')}) without a record of ${ctx.conf ?? 'this declaration file'}, ` +
    'so php-fpm-multi cannot tell it started it and leaves it alone: ' +
    `stop it the way it was started (kill -QUIT ${pids.join(' ')} for one started by hand) or remove the duplicate declaration, then run start`;
}

/**
 * Masters of this declared instance's binary, config and owner that run without anything proving
 * this file started them: the one a pidfile outside the run directory names, and any other in the
 * process table. Empty when its own master runs.
 */
async function findUnownedMasters(ctx: ControlContext, target: DeclaredTarget, inspection: Inspection): Promise<ProcessInfo[]> {
  if (inspection.state === 'running' || inspection.state === 'orphan') return [];
  const found = await findRunningMasters(ctx, await declaredIdentity(ctx.system, target.instance));
  const named = inspection.state === 'stopped' ? inspection.unowned : undefined;
  return named === undefined || found.some((proc) => proc.pid === named.pid) ? found : [named, ...found];
}

/**
 * What `start` would refuse for a master of this instance's binary, config and owner that this
 * declaration did not start, or null: for `check`, `status` and `reload`, which report it. An
 * inspection already made may be given.
 */
export async function describeUnownedMaster(ctx: ControlContext, target: DeclaredTarget, inspection?: Inspection): Promise<string | null> {
  const running = await findUnownedMasters(ctx, target, inspection ?? (await inspectTarget(ctx.system, target)));
  return running.length === 0 ? null : describeUnowned(ctx, target.instance, running);
}

/** Writes the record of a master found running without one (adoption); returns a note or a failure. */
async function adopt(ctx: ControlContext, target: DeclaredTarget, inspection: RunningInspection, how: string): Promise<Outcome> {
  const pidfile = recordedPidfile(target);
  const record = recordPath(ctx.runDir, target.name);
  try {
    const launch = target.record?.binary === inspection.identity.binary ? launchFactsOf(target.record) : undefined;
    await writeRecord(ctx.system, ctx.runDir, recordOf(ctx, target.name, inspection.identity, pidfile, inspection.master, launch));
  } catch (error) {
    return fail(target.name, `already running (pid ${inspection.pid}), but ${describeWriteFailure(error, record, ctx.runDir)}; it was left running`);
  }
  // Its record now names it: an intent left by the launch that brought it up has served.
  await removeLaunchIntent(ctx.system, ctx.runDir, target.name);
  return succeed(target.name, `already running (pid ${inspection.pid}); ${how}, its record was written`);
}

/**
 * After a failed launch: an empty pidfile is what php-fpm leaves when it created the file but
 * could not write the pid (ENOSPC). Before the launch there was none (start removed a stale,
 * crashed or empty one), and what the launch started is stopped, so it names nothing: removed,
 * for it would make the instance's state unknown until then. Returns a note for the message.
 */
async function removeEmptyPidfileOfLaunch(system: System, pidfile: string): Promise<string> {
  try {
    if ((await system.readFile(pidfile)) !== '') return '';
    await system.unlink(pidfile);
    return `; removed the empty pidfile ${pidfile} its php-fpm left`;
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return '';
  }
}

/** Whether an empty pidfile stays empty: one that php-fpm failed to write, not one being written. */
async function staysEmpty(system: System, pidfile: string): Promise<boolean> {
  await system.sleep(EMPTY_PIDFILE_SETTLE_MS);
  try {
    return (await system.readFile(pidfile)) === '';
  } catch {
    return false;
  }
}

/**
 * Idempotent start: config test, launch, verify the master the pidfile names, then wait until
 * every pool with a ping.path answers. A master whose pools never answer is stopped: a failed
 * start leaves nothing half-started, and the next start tries again from scratch.
 *
 * Only what this declaration started (its record), what its pidfile in its run directory names, or
 * what its own launch created is ever acted on. A master of the same binary, config and owner
 * running without any of those (started by hand, by a per-slot init script, or by another
 * declaration file, even one naming the same pidfile= outside the run directory) makes start
 * refuse before launching: it is reported, never signalled.
 */
/** `configTested`: the caller ran php-fpm's config test just before (restart, before its stop): not run again. */
export interface StartOptions {
  configTested?: boolean;
}

async function startInstanceUnguarded(ctx: ControlContext, target: DeclaredTarget, options: StartOptions = {}): Promise<Outcome> {
  const { system } = ctx;
  const { instance, errorLog, pools } = target;
  const inspection = await inspectTarget(system, target);
  let note = '';
  let emptyPidfile = false;
  switch (inspection.state) {
    case 'running':
      // Found through the intent of its interrupted launch, or by its pidfile in the run directory
      // (its record lost): proven ours, so adopted (its record written), not restarted.
      if (!inspection.recorded) {
        return adopt(ctx, target, inspection, inspection.foundBy === 'intent' ? 'an interrupted start had launched it' : `${instance.pidfile} names it`);
      }
      return succeed(instance.name, `already running (pid ${inspection.pid})`);
    case 'unknown':
      if (inspection.unreadableRecord === true) break; // no master found through its pidfile: the new record replaces it
      if (!inspection.emptyPidfile || target.record !== null) return fail(instance.name, `not started: ${inspection.detail}`);
      emptyPidfile = true; // decided below, once no master of ours is known to run
      break;
    case 'stale':
      await system.unlink(recordedPidfile(target));
      note = `; removed the stale pidfile (${inspection.detail})`;
      break;
    case 'crashed':
      note = `; it had crashed (${inspection.detail})${await cleanUpCrashed(ctx, target, inspection)}`;
      break;
    case 'stopped':
      if (inspection.interruptedStop) note = `; cleaned up after an interrupted stop${await cleanUpCrashed(ctx, target, inspection)}`;
      break;
    case 'orphan':
      break;
  }
  const identity = await declaredIdentity(system, instance);
  const running = await findRunningMasters(ctx, identity);
  // The intent of a launch whose master inspectTarget did not find: it proves nothing more.
  if (target.intent !== null || (await readLaunchIntent(system, ctx.runDir, instance.name)) !== null) await removeLaunchIntent(system, ctx.runDir, instance.name);
  // A master of this config that nothing proves ours (a pidfile elsewhere may name it): never adopted nor signalled.
  const unowned = inspection.state === 'stopped' && inspection.unowned !== undefined && !running.some((proc) => proc.pid === inspection.unowned?.pid)
    ? [inspection.unowned, ...running]
    : running;
  if (unowned.length > 0) return fail(instance.name, `not started: ${describeUnowned(ctx, instance, unowned)}. Nothing was signalled.`);
  // An address another process listens on: php-fpm would exit 70 after its launch, or fail to bind.
  const held = await describeHeldAddresses(ctx, pools, null);
  if (held.length > 0) return fail(instance.name, `not started: ${held.join('; ')}`);
  if (emptyPidfile) {
    // Safe to remove: it is trusted (root-owned, in a root-only directory), holds no pid so it
    // names no process, no record of ours names a master, no master of this binary, config and
    // owner runs, and it stayed empty (not a pidfile php-fpm is writing at this instant). It is
    // what a php-fpm that could not write it (ENOSPC) leaves, and it would block every start.
    if (!(await staysEmpty(system, instance.pidfile))) return fail(instance.name, `not started: ${inspection.detail}`);
    await system.unlink(instance.pidfile);
    note = `; removed the empty pidfile ${instance.pidfile} (no master of it runs)`;
  }
  if (options.configTested !== true) {
    const test = await testConfig(ctx, instance);
    if (!test.ok) return fail(instance.name, `not started: ${test.message}`);
  }
  await checkPidfileTrust(system, instance.pidfile);
  const seconds = instance.startTimeoutMs / 1000;
  const launchTicks = await readUptimeTicks(system);
  // The launch's master starts after launchTicks: nothing that ran before can pass for it.
  const launched: ExpectedMaster = { ...identity, startedAfterTicks: launchTicks };
  const before = new Set(running.map((proc) => proc.pid));
  const deadlineTicks = launchTicks + Math.ceil((instance.startTimeoutMs / 1000) * CLOCK_TICKS_PER_SECOND) + CLOCK_TICKS_PER_SECOND;
  try {
    await writeLaunchIntent(system, ctx.runDir, {
      name: instance.name, binary: identity.binary, config: identity.config, pidfile: instance.pidfile, uid: system.uid, launchTicks, deadlineTicks,
      ...(ctx.declaration === undefined ? {} : { declaration: ctx.declaration }),
    });
  } catch (error) {
    return fail(instance.name, `not started: ${describeWriteFailure(error, launchIntentPath(ctx.runDir, instance.name), ctx.runDir)}. Nothing was launched`);
  }
  // Launched through the controller's symlink, so that a reload can move it to another binary.
  let launch: LaunchFacts;
  try {
    launch = { launchPath: await pointLaunchLink(system, ctx.runDir, instance.name, instance.binary), launched: launchSettingsOf(instance) };
  } catch (error) {
    await removeLaunchIntent(system, ctx.runDir, instance.name);
    return fail(instance.name, `not started: ${describeWriteFailure(error, launchLinkPath(ctx.runDir, instance.name), ctx.runDir)}. Nothing was launched`);
  }
  const deadline = system.now() + instance.startTimeoutMs;
  const logOffset = await measureLog(system, errorLog);
  const invocation = buildLaunch(instance, ctx.path, launch.launchPath);
  const result = await system.run(invocation.program, invocation.args, { env: invocation.env, timeoutMs: instance.startTimeoutMs });
  if (result.exitCode !== 0) {
    const output = result.stderr.trim() !== '' ? result.stderr : await readLogSince(system, errorLog, logOffset);
    const cleaned = await stopMastersOfLaunch(system, launched, before, instance.stopTimeoutMs);
    await removeLaunchIntent(system, ctx.runDir, instance.name);
    const removed = await removeEmptyPidfileOfLaunch(system, instance.pidfile);
    const when = result.timedOut ? `did not confirm start-up within ${seconds} s (start_timeout) and was killed` : describeExit(result);
    return fail(instance.name, `start failed: php-fpm ${when}${cleaned > 0 ? '; stopped the master it had left' : ''}${removed}${quoteOutput(output)}`);
  }
  const master = await waitForMaster(system, instance.pidfile, launched, null, deadline);
  if (master === null) {
    const cleaned = await stopMastersOfLaunch(system, launched, before, instance.stopTimeoutMs);
    await removeLaunchIntent(system, ctx.runDir, instance.name);
    const removed = await removeEmptyPidfileOfLaunch(system, instance.pidfile);
    return fail(
      instance.name,
      `start failed: php-fpm reported start-up, but ${instance.pidfile} did not name a php-fpm master of ${instance.config} within ${seconds} s (start_timeout)` +
        `${cleaned > 0 ? '; stopped the master it had left' : ''}${removed}${quoteOutput(await readLogSince(system, errorLog, logOffset))}`,
    );
  }
  const pinned: ExpectedMaster = { ...identity, startTimeTicks: master.startTimeTicks };
  /** Stops the master this launch created, for a start that cannot be completed; returns what happened. */
  const undo = async (): Promise<string> => {
    try {
      await stopMaster(system, await listStats(system), master, pinned, instance.stopTimeoutMs);
    } catch (error) {
      if (!(error instanceof FpmMultiError)) throw error;
      return `its master (pid ${master.pid}) could not be stopped (${error.message})`;
    }
    await bestEffort(instance.pidfile, () => removePidfileOf(system, instance.pidfile, master.pid));
    await bestEffort(recordPath(ctx.runDir, instance.name), () => removeRecord(system, ctx.runDir, instance.name));
    return `its master (pid ${master.pid}) was stopped`;
  };
  // Recorded before the readiness wait, so that a stop reaches it even if this controller dies.
  // A master without a record would be invisible to stop: if it cannot be written, it is stopped.
  try {
    await writeRecord(system, ctx.runDir, recordOf(ctx, instance.name, identity, instance.pidfile, master, launch));
  } catch (error) {
    const { what, fix } = explainWriteFailure(error, `its record ${recordPath(ctx.runDir, instance.name)}`, ctx.runDir);
    const undone = await undo();
    await removeLaunchIntent(system, ctx.runDir, instance.name);
    return fail(instance.name, `start failed: ${what}; ${undone}, for a master without a record would be invisible to stop. ${fix}`);
  }
  await removeLaunchIntent(system, ctx.runDir, instance.name);
  const readiness = await waitUntilPoolsAnswer(system, pools, deadline);
  if (readiness.failures.length > 0) {
    const undone = await undo();
    const stopped = undone.endsWith('was stopped') ? `so its master (pid ${master.pid}) was stopped` : `and ${undone}`;
    return fail(instance.name, `start failed: ${describeNotReady(readiness, seconds, stopped)}`);
  }
  return succeed(instance.name, `started (pid ${master.pid})${describeReady(readiness)}${note}`);
}

/**
 * The launch facts of a master that can switch binaries live: launched through this run
 * directory's symlink for the instance (src/process/switch.ts). Undefined for a master launched
 * directly (started before the controller launched through the symlink, or adopted).
 */
function switchableLaunch(runDir: string, target: DeclaredTarget): LaunchFacts | undefined {
  const launch = launchFactsOf(target.record);
  return launch !== undefined && launch.launchPath === launchLinkPath(runDir, target.name) ? launch : undefined;
}

/** Why a reload of the recorded master would not do what the file now says; null when it would. */
function describeRecordChange(runDir: string, target: DeclaredTarget, declared: ExpectedMaster): string | null {
  const { record, instance } = target;
  if (record === null) return null;
  const restart = `run php-fpm-multi restart ${target.name}`;
  if (record.binary !== declared.binary && switchableLaunch(runDir, target) === undefined) {
    return `the binary changed (${record.binary} → ${declared.binary}), and its master was launched directly, not through ` +
      `${launchLinkPath(runDir, target.name)} (started by an older php-fpm-multi, or adopted), so a reload cannot move it to the new binary: ` +
      `${restart} once (later slot switches are live)`;
  }
  if (record.config !== declared.config) return `the config changed (${record.config} → ${declared.config}): ${restart}`;
  if (record.pidfile !== instance.pidfile) return `the pidfile changed (${record.pidfile} → ${instance.pidfile}): ${restart}`;
  return null;
}

/**
 * Config test first (a broken config never reaches the running master), then SIGUSR2. php-fpm
 * re-executes itself and, daemonized, comes back under a new pid: success means the pidfile
 * names a new verified master; a master that died instead is a failed reload, reported as soon
 * as the old master is gone with no new one. php-fpm re-executes the binary and config it was
 * started with, so a reload after `binary=`, `slot`, `config=` or `pidfile=` was edited would not
 * do what the file says: it is refused before any signal.
 */
async function reloadInstanceUnguarded(ctx: ControlContext, target: DeclaredTarget): Promise<Outcome> {
  const { system } = ctx;
  const { instance, errorLog, pools } = target;
  const inspection = await inspectTarget(system, target);
  if (inspection.state !== 'running') {
    // A master of its config that this file did not start: named, for "start it" would be refused.
    const unowned = await describeUnownedMaster(ctx, target, inspection);
    if (unowned !== null) return fail(instance.name, `not reloaded: ${unowned}`);
    return fail(instance.name, `not reloaded: not running (${inspection.state}${inspection.detail === '' ? '' : `: ${inspection.detail}`}); start it`);
  }
  const declared = await declaredIdentity(system, instance);
  const changed = describeRecordChange(ctx.runDir, target, declared);
  if (changed !== null) return fail(instance.name, `not reloaded, the running master (pid ${inspection.pid}) keeps serving: ${changed}`);
  // With the declared binary: for a slot switch, the new binary tests the config before anything changes.
  const test = await testConfig(ctx, instance);
  if (!test.ok) return fail(instance.name, `not reloaded, the running master keeps serving: ${test.message}`);
  // The re-executed php-fpm binds what its old master does not hold and rewrites its pidfile; it
  // exits when it cannot (an address another process holds, a full or read-only file system): the
  // instance would be down. Refused before the signal.
  const held = await describeHeldAddresses(ctx, pools, inspection.pid);
  if (held.length > 0) return fail(instance.name, `not reloaded, the running master keeps serving: ${held.join('; ')}`);
  const unwritable = await describeUnwritable(system, recordedPidfile(target), ctx.runDir);
  if (unwritable !== null) return fail(instance.name, `not reloaded, the running master keeps serving: ${unwritable}`);
  const logOffset = await measureLog(system, errorLog);
  const old = inspection.master;
  const { startTimeTicks: _pinned, ...identity } = inspection.identity;
  const launch = switchableLaunch(ctx.runDir, target);
  // A live slot switch: the record names another binary than the file, and the master re-executes
  // the controller's symlink, which now names the declared one.
  const switching = launch !== undefined && identity.binary !== declared.binary;
  let previousTarget: string | null = null;
  if (launch !== undefined) {
    try {
      previousTarget = await system.readlink(launch.launchPath);
    } catch {
      previousTarget = null; // gone: repointed below; nothing to put back
    }
    try {
      // Also on a plain reload: the symlink names the declared binary (the one the record names,
      // unless this is a switch), whatever happened to it since.
      await pointLaunchLink(system, ctx.runDir, instance.name, instance.binary);
    } catch (error) {
      return fail(instance.name, `not reloaded, nothing was signalled: ${describeWriteFailure(error, launch.launchPath, ctx.runDir)}`);
    }
  }
  // The new master is the old one's successor: same config and owner, the binary the symlink
  // names (the declared one on a switch), started after it.
  const successor = { ...identity, binary: switching ? declared.binary : identity.binary };
  const expected: ExpectedMaster = { ...successor, startedAfterTicks: old.startTimeTicks };
  const deadline = system.now() + instance.startTimeoutMs;
  const sent = await signalVerified(system, old.pid, 'SIGUSR2', inspection.identity);
  if (sent.outcome !== 'sent') {
    // Nothing was reloaded: the symlink names the running binary again.
    const target = previousTarget;
    if (switching && target !== null) await bestEffort(launch.launchPath, async () => { await pointLaunchLink(system, ctx.runDir, instance.name, target); });
    return fail(instance.name, `not reloaded: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  }
  const master = await waitForMaster(system, instance.pidfile, expected, old, deadline);
  const seconds = instance.startTimeoutMs / 1000;
  const switched = switching ? `; switched ${identity.binary} → ${declared.binary}` : '';
  if (master === null) {
    const stillOld = !isGone(old, await readProcess(system, old.pid));
    const what = stillOld
      ? `its master (pid ${old.pid}) did not come back from the reload within ${seconds} s (start_timeout)`
      : `its master (pid ${old.pid}) died during the reload: the instance is down`;
    const how = switching
      ? `switch to ${declared.binary} failed: ${what}${stillOld ? ' (it may still be re-executing; see status)' : `; php-fpm-multi start ${instance.name} starts it with ${declared.binary}`}`
      : what;
    return fail(instance.name, `reload failed: ${how}${quoteOutput(await readLogSince(system, errorLog, logOffset))}`);
  }
  let recordNote = '';
  try {
    // The record follows the binary the new master runs, and keeps how it was launched (php-fpm keeps argv and environment).
    await writeRecord(system, ctx.runDir, recordOf(ctx, instance.name, successor, instance.pidfile, master, launch));
  } catch (error) {
    recordNote = `; but ${describeWriteFailure(error, recordPath(ctx.runDir, instance.name), ctx.runDir)} (its pidfile still names it)`;
  }
  const readiness = await waitUntilPoolsAnswer(system, pools, deadline);
  if (readiness.failures.length > 0) {
    // A reload never takes an instance down: what still serves keeps serving, and the failure is reported.
    return fail(
      instance.name,
      `reload failed: ${describeNotReady(readiness, seconds, `though its new master (pid ${old.pid} → ${master.pid}) runs; it was left running`)}`,
    );
  }
  const restartNeeded = describeRestartNeeded(instance.name, changedLaunchKeys(target.record?.launched, launchSettingsOf(instance)));
  return {
    ...succeed(instance.name, `reloaded (pid ${old.pid} → ${master.pid})${switched}${describeReady(readiness)}${restartNeeded}${recordNote}`),
    ok: recordNote === '',
  };
}

/**
 * What must hold before restart's stop half, beyond what check reports: null when the start half
 * can work. A running instance whose pidfile php-fpm could not rewrite, or whose record the
 * controller could not write (a full or read-only file system), is left serving.
 */
export async function describeRestartRefusal(ctx: ControlContext, target: DeclaredTarget): Promise<string | null> {
  const inspection = await inspectTarget(ctx.system, target);
  const running = inspection.state === 'running' || inspection.state === 'orphan';
  // An address another process holds: the start half's php-fpm would exit 70 or fail to bind.
  const held = await describeHeldAddresses(ctx, target.pools, running ? inspection.pid : null);
  if (held.length > 0) return held.join('; ');
  if (!running) return null; // nothing to keep serving: start says what fails
  return describeUnwritable(ctx.system, target.instance.pidfile, ctx.runDir);
}

/**
 * restart checks everything before it stops anything: an instance to start whose listen address
 * (or config) the running master of an orphan record of this file holds would be refused by the
 * start half once that orphan is stopped in parallel, or not at all: the whole restart is refused,
 * naming the orphan and the way out (tryout 2 finding 5). null when nothing refuses it.
 */
export async function describeOrphanHolding(ctx: ControlContext, targets: readonly Target[]): Promise<string | null> {
  const orphans: Array<{ name: string; master: ProcessInfo }> = [];
  for (const target of targets) {
    if ((target.kind !== 'orphan' && target.kind !== 'launched') || target.why !== 'undeclared') continue;
    const inspection = await inspectQuietly(ctx, target);
    if (inspection?.state === 'running' || inspection?.state === 'orphan') orphans.push({ name: target.name, master: inspection.master });
  }
  if (orphans.length === 0) return null;
  const probe = createCommandListenerProbe(ctx);
  const refusals: string[] = [];
  for (const target of targets) {
    if (target.kind !== 'declared') continue;
    const inspection = await inspectQuietly(ctx, target);
    // Running, or a state the restart itself names for that instance (an untrusted pidfile): not this case.
    if (inspection === null || inspection.state === 'running' || inspection.state === 'orphan') continue;
    const held = await probe.findHeld(target.pools);
    for (const { name, master } of orphans) {
      const holds = master.cmdline.join(' ').includes(`(${target.instance.config})`) ||
        held.some((address) => address.holders.some((holder) => holder.pid === master.pid || holder.sessionId === master.pid));
      if (holds) {
        refusals.push(
          `${target.name}: the address is held by ${name} (pid ${master.pid}), recorded by ${ctx.conf ?? 'this declaration file'} under its old name: run php-fpm-multi stop ${name} first`,
        );
      }
    }
  }
  return refusals.length === 0 ? null : `nothing was restarted (nothing stopped): a restart would stop the orphan and could not start the instance in its place:\n  ${refusals.join('\n  ')}`;
}

/** inspectTarget, with a pidfile or record the system refuses to show left to the target's own outcome (null). */
async function inspectQuietly(ctx: ControlContext, target: Target): Promise<Inspection | null> {
  try {
    return await inspectTarget(ctx.system, target);
  } catch (error) {
    if (!(error instanceof FpmMultiError) && errnoCode(error) === undefined) throw error;
    return null;
  }
}

/** A listener probe for one command's instances: reads the kernel's socket tables once (check). */
export function createCommandListenerProbe(ctx: ControlContext): ListenerProbe {
  return createListenerProbe(ctx.system, (listen) => resolveSocketPath(ctx.system, listen));
}

/**
 * Why a pool of this instance could not listen where its config says: the address already has a
 * listening socket held by a process that is not `own` (this instance's running master) nor one
 * of its workers. Read afresh unless a probe is given: a restart must look again after its stop.
 */
export async function describeHeldAddresses(
  ctx: ControlContext, pools: readonly FpmPool[], own: number | null, probe: ListenerProbe = createCommandListenerProbe(ctx),
): Promise<string[]> {
  return describeHeld(await probe.findHeld(pools), own);
}

/**
 * Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). What is
 * stopped is what the record names (binary, config, start time), whatever the file says now.
 */
export function stopTarget(ctx: ControlContext, target: StoppableTarget): Promise<Outcome> {
  return guarded(target.name, 'stopped', () => stopTargetUnguarded(ctx, target));
}

/** See startInstanceUnguarded. */
export function startInstance(ctx: ControlContext, target: DeclaredTarget, options: StartOptions = {}): Promise<Outcome> {
  return guarded(target.name, 'started', () => startInstanceUnguarded(ctx, target, options));
}

/** See reloadInstanceUnguarded. */
export function reloadInstance(ctx: ControlContext, target: DeclaredTarget): Promise<Outcome> {
  return guarded(target.name, 'reloaded', () => reloadInstanceUnguarded(ctx, target));
}

/** SIGUSR1: php-fpm reopens its log files (after rotation). */
export async function reopenInstance(ctx: ControlContext, target: DeclaredTarget): Promise<Outcome> {
  const inspection = await inspectTarget(ctx.system, target);
  if (inspection.state !== 'running') return fail(target.name, `logs not reopened: not running (${inspection.state})`);
  const sent = await signalVerified(ctx.system, inspection.pid, 'SIGUSR1', inspection.identity);
  if (sent.outcome !== 'sent') return fail(target.name, `logs not reopened: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  return succeed(target.name, `log files reopened (pid ${inspection.pid})`);
}
