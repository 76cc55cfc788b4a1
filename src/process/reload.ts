// Reload (SIGUSR2, a live slot switch included) and reopen (SIGUSR1) of one running declared
// instance. A reload is refused before any signal when it would not do what the file says, or
// would take the instance down.
import {
  bestEffort, describeWriteFailure, fail, guarded, measureLog, quoteOutput, readLogSince, succeed, testConfig, type ControlContext, type Outcome,
} from './control.js';
import { declaredIdentity, inspectTarget } from './inspect.js';
import { readProcess, type ExpectedMaster } from './proc.js';
import { describeNotReady, describeReady, waitForMaster, waitUntilPoolsAnswer } from './readiness.js';
import { recordPath, writeRecord } from './record.js';
import { signalVerified } from './signal.js';
import { changedLaunchKeys, describeRestartNeeded, launchLinkPath, launchSettingsOf, pointLaunchLink } from './switch.js';
import type { DeclaredTarget } from './target.js';
import { isGone } from './terminate.js';
import { describeUnwritable } from './write-probe.js';
import { launchFactsOf, recordedPidfile, recordOf, type LaunchFacts } from './stop.js';
import { describeUnownedMaster, describeHeldAddresses } from './occupants.js';
import { ensureSocketDirectories } from './socket-dirs.js';

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
  // A pool added or moved to a directory that does not exist: the re-executed master would fail to bind and the instance be down.
  const socketDirs = await ensureSocketDirectories(system, instance, pools);
  if (!socketDirs.ok) return fail(instance.name, `not reloaded, the running master keeps serving: ${socketDirs.problem}`);
  const created = socketDirs.created.map((line) => `\n  ${line}`).join('');
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
    ...succeed(instance.name, `reloaded (pid ${old.pid} → ${master.pid})${switched}${describeReady(readiness)}${restartNeeded}${recordNote}${created}`),
    ok: recordNote === '',
  };
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
