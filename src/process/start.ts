// Idempotent start of one declared instance (startInstance), and adoption of a master of ours
// found running without its record. Only what this declaration started, what its pidfile in its
// run directory names, or what its own launch created is ever acted on.
import { FpmMultiError } from '../errors.js';
import { buildLaunch } from '../model/invocation.js';
import {
  bestEffort, describeExit, describeWriteFailure, explainWriteFailure, fail, guarded, measureLog, quoteOutput, readLogSince, succeed,
  type ControlContext, type Outcome,
} from './control.js';
import { declaredIdentity, inspectTarget, type RunningInspection } from './inspect.js';
import { checkPidfileTrust } from './pidfile.js';
import { prepareAccount } from './account.js';
import { CLOCK_TICKS_PER_SECOND, listStats, readUptimeTicks, type ExpectedMaster } from './proc.js';
import { describeNotReady, describeReady, waitForMaster, waitUntilPoolsAnswer } from './readiness.js';
import { launchIntentPath, readLaunchIntent, recordPath, removeLaunchIntent, removeRecord, writeLaunchIntent, writeRecord } from './record.js';
import { errnoCode, type System } from './system.js';
import { launchLinkPath, launchSettingsOf, pointLaunchLink } from './switch.js';
import type { DeclaredTarget } from './target.js';
import { removePidfileOf, stopMaster, stopMastersOfLaunch } from './terminate.js';
import { cleanUpCrashed, launchFactsOf, recordedPidfile, recordOf, type LaunchFacts } from './stop.js';
import { findRunningMasters, describeUnowned, describeHeldAddresses } from './occupants.js';
import { ensureSocketDirectories } from './socket-dirs.js';

/**
 * How long an empty pidfile must stay empty before start removes it: php-fpm writes its pidfile
 * by unlink + creat + write, so an empty one is either that instant or a write that failed.
 */
const EMPTY_PIDFILE_SETTLE_MS = 500;

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
 * Idempotent start: launch, verify the master the pidfile names, then wait until every pool with
 * a ping.path answers. No separate `php-fpm --test` first: start launches only when no master of
 * the instance runs, so there is nothing for a config test to protect, and php-fpm's own start-up
 * is that test (the same parsing and post-processing; measured on broken configs: the launch
 * prints the same errors, file and line, exits 78 or 70 and leaves no process; a missing socket
 * directory passes `-t` and only the launch catches it). Its output is reported as the test's
 * was. The config test stays where it protects a running master: reload, and restart (all its
 * tests before anything stops). A master whose pools never answer is stopped: a failed
 * start leaves nothing half-started, and the next start tries again from scratch.
 *
 * Only what this declaration started (its record), what its pidfile in its run directory names, or
 * what its own launch created is ever acted on. A master of the same binary, config and owner
 * running without any of those (started by hand, by a per-slot init script, or by another
 * declaration file, even one naming the same pidfile= outside the run directory) makes start
 * refuse before launching: it is reported, never signalled.
 */
async function startInstanceUnguarded(ctx: ControlContext, target: DeclaredTarget): Promise<Outcome> {
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
  await checkPidfileTrust(system, instance.pidfile, identity.uid);
  // user=: the account php-fpm runs as, and its pidfile directory (src/process/account.ts).
  const account = await prepareAccount(system, ctx.runDir, instance);
  if ('problem' in account) return fail(instance.name, `not started: ${account.problem}`);
  // /run is a tmpfs: a socket directory is gone after a reboot. Made now, or nothing is launched.
  const socketDirs = await ensureSocketDirectories(system, instance, pools);
  if (!socketDirs.ok) return fail(instance.name, `not started: ${socketDirs.problem}`);
  const created = socketDirs.created.map((line) => `
  ${line}`).join('');
  const seconds = instance.startTimeoutMs / 1000;
  const launchTicks = await readUptimeTicks(system);
  // The launch's master starts after launchTicks: nothing that ran before can pass for it.
  const launched: ExpectedMaster = { ...identity, startedAfterTicks: launchTicks };
  const before = new Set(running.map((proc) => proc.pid));
  const deadlineTicks = launchTicks + Math.ceil((instance.startTimeoutMs / 1000) * CLOCK_TICKS_PER_SECOND) + CLOCK_TICKS_PER_SECOND;
  try {
    await writeLaunchIntent(system, ctx.runDir, {
      name: instance.name, binary: identity.binary, config: identity.config, pidfile: instance.pidfile, uid: identity.uid ?? system.uid, launchTicks, deadlineTicks,
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
  const invocation = buildLaunch(instance, ctx.path, launch.launchPath, account.runAs);
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
  return succeed(instance.name, `started (pid ${master.pid})${describeReady(readiness)}${note}${created}`);
}

/** See startInstanceUnguarded. */
export function startInstance(ctx: ControlContext, target: DeclaredTarget): Promise<Outcome> {
  return guarded(target.name, 'started', () => startInstanceUnguarded(ctx, target));
}
