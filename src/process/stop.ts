// Graceful stop of one target (stopTarget), and what start and reload share with it about a
// target's records: the pidfile it was recorded with, the record of a master of ours, and the
// clean-up after a dead master. Every signal goes through signalVerified (identity checked
// against /proc right before it); the system is injected.
import { DEFAULT_STOP_TIMEOUT_S } from '../model/instance.js';
import { bestEffort, fail, guarded, succeed, type ControlContext, type Outcome } from './control.js';
import { inspectTarget, type CrashedInspection, type Inspection, type StoppedInspection } from './inspect.js';
import { readUptimeTicks, type ExpectedMaster, type ProcessInfo } from './proc.js';
import { recordPath, removeLaunchIntent, removeRecord, writeRecord, type InstanceRecord, type LaunchIntent } from './record.js';
import type { FpmSignal } from './signal.js';
import type { LaunchSettings } from './switch.js';
import type { DeclaredTarget, LaunchedTarget, OrphanTarget, UnusableTarget } from './target.js';
import { describeEscalation, endOrphanWorkers, removePidfileOf, stopMaster } from './terminate.js';
import { findUnownedMasters, describeUnowned } from './occupants.js';

/** What stop can act on: anything with a record or a usable declaration (an unusable one alone has nothing to verify). */
export type StoppableTarget = DeclaredTarget | OrphanTarget | LaunchedTarget | (UnusableTarget & { record: InstanceRecord });

/** The pidfile inspectTarget reads: the recorded master's (the file may name another since), or the launch's. */
export function recordedPidfile(target: StoppableTarget): string {
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

/** How a master was launched (src/process/switch.ts): through the controller's symlink, with these settings. */
export interface LaunchFacts {
  launchPath: string;
  launched: LaunchSettings;
}

/** The record of a master of ours: what it is, who runs it, which file started it (and, when known, how it was launched). */
export function recordOf(ctx: ControlContext, name: string, identity: ExpectedMaster, pidfile: string, master: ProcessInfo, launch?: LaunchFacts): InstanceRecord {
  return {
    name, binary: identity.binary, config: identity.config, pidfile, pid: master.pid, startTimeTicks: master.startTimeTicks, uid: identity.uid ?? ctx.system.uid,
    // Which declaration file started it: another file sharing the run directory never acts on it.
    ...(ctx.declaration === undefined ? {} : { declaration: ctx.declaration }),
    ...(launch === undefined ? {} : { launchPath: launch.launchPath, launched: launch.launched }),
  };
}

/** The launch facts a record keeps, when it has them. */
export function launchFactsOf(record: InstanceRecord | null): LaunchFacts | undefined {
  return record?.launchPath === undefined || record.launched === undefined ? undefined : { launchPath: record.launchPath, launched: record.launched };
}

/** Forgets a dead master: its orphaned workers, its pidfile and its record. */
export async function cleanUpCrashed(ctx: ControlContext, target: StoppableTarget, inspection: CrashedInspection | StoppedInspection): Promise<string> {
  const found = recordOfTarget(target);
  const binary = inspection.identity?.binary ?? found?.binary;
  // The recorded start time bounds the workers when the dead pid is the recorded one.
  const masterStart = found !== null && found.pid === inspection.pid ? found.startTimeTicks : undefined;
  const ended = inspection.pid !== null && binary !== undefined ? await endOrphanWorkers(ctx.system, ctx.processes, binary, inspection.pid, masterStart) : 0;
  // Best effort: on a full or read-only run directory, stop still succeeds for what is not running.
  const pidfile = recordedPidfile(target);
  const notes = (await bestEffort(pidfile, () => removePidfileOf(ctx.system, pidfile, inspection.pid, inspection.identity?.uid))) +
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
      const notes = (await bestEffort(pidfile, () => removePidfileOf(system, pidfile, inspection.pid, inspection.identity?.uid))) +
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
      const notes = (await bestEffort(pidfile, () => removePidfileOf(system, pidfile, inspection.pid, inspection.identity?.uid))) +
        (pidfile === current ? '' : await bestEffort(current, () => removePidfileOf(system, current, inspection.pid, inspection.identity?.uid))) +
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

/**
 * Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). What is
 * stopped is what the record names (binary, config, start time), whatever the file says now.
 */
export function stopTarget(ctx: ControlContext, target: StoppableTarget): Promise<Outcome> {
  return guarded(target.name, 'stopped', () => stopTargetUnguarded(ctx, target));
}
