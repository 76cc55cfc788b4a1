// restart with the listening sockets handed over: the new master starts while the old one still
// serves, on new listening sockets the controller creates at temporary names and gives it
// (FPM_SOCKETS=<listen address>=<fd>: php-fpm then uses them instead of binding); each is then
// renamed over its listen address (rename(2) is atomic: a connect finds the old socket or the
// new one, never none), and only then is the old master stopped gracefully. What php-fpm does at
// exit is dealt with: a graceful exit unlinks every unix listen path by name (the new socket's
// name by then) and the pidfile (the new master's by then), so the controller keeps a second name
// of each new socket and puts it back the moment the old master's unlink is seen, and writes the
// pidfile again. Applies to an instance whose every listen address (and pm.status_listen) is a
// unix socket that exists now, in a directory only trusted users may write (see
// describeUnsafeHandover); any other restarts by stop and start.
import { FpmMultiError } from '../errors.js';
import { buildLaunch } from '../model/invocation.js';
import { describeExit, fail, quoteOutput, readLogSince, measureLog, succeed, type ControlContext, type Outcome } from './control.js';
import { declaredIdentity, inspectTarget, type RunningInspection } from './inspect.js';
import { prepareAccount } from './account.js';
import { CLOCK_TICKS_PER_SECOND, listStats, readProcess, readUptimeTicks, type ExpectedMaster, type ProcessInfo } from './proc.js';
import { describeNotReady, describeReady, waitForMaster, waitUntilPoolsAnswer } from './readiness.js';
import { removeLaunchIntent, writeLaunchIntent, writeRecord, type InstanceRecord } from './record.js';
import { launchSettingsOf, pointLaunchLink } from './switch.js';
import { errnoCode, type FileStat, type ListeningSocket, type System } from './system.js';
import type { DeclaredTarget } from './target.js';
import { signalVerified } from './signal.js';
import { isGone, POLL_INTERVAL_MS, stopMaster, stopMastersOfLaunch } from './terminate.js';
import { handoverBindPath } from './handover-names.js';
import { describeSocketDirWriter } from './socket-dirs.js';
import { posix as path } from 'node:path';

/**
 * After the new sockets are published, before the old master is told to stop: connections that
 * reached the old socket's backlog just before the rename are accepted by its idle workers.
 */
const BACKLOG_DRAIN_MS = 50;
/** How often the old master's unlink of a listen path is looked for while it stops. */
const UNLINK_WATCH_MS = 1;
/** php-fpm writes its pidfile 0644 with the bare pid. */
const PIDFILE_MODE = 0o644;

interface HandedSocket {
  /** The listen address: the key in FPM_SOCKETS and the path clients connect to. */
  address: string;
  stat: FileStat;
  /** Where the new socket is created, published from, and its spare name for the repair. */
  temp: string;
  publish: string;
  spare: string;
  /** A second name of the old socket, to put back if the new master has to be stopped. */
  oldSpare: string;
  listening: ListeningSocket | null;
}

/** The unix listen paths of the instance's pools, when all of them are, and each is a socket now; else null. */
async function planSockets(system: System, target: DeclaredTarget): Promise<Array<{ address: string; stat: FileStat }> | null> {
  if (target.pools.length === 0) return null;
  const addresses = new Set<string>();
  for (const pool of target.pools) {
    for (const listen of [pool.listen, pool.statusListen]) {
      if (listen === null) continue;
      if (!listen.startsWith('/')) return null; // TCP: not handed over (restart by stop and start)
      addresses.add(listen);
    }
  }
  const planned: Array<{ address: string; stat: FileStat }> = [];
  for (const address of addresses) {
    try {
      const stat = await system.lstat(address);
      if (stat.kind !== 'other') return null;
      planned.push({ address, stat });
    } catch {
      return null;
    }
  }
  return planned.length === 0 ? null : planned;
}

async function removeQuietly(system: System, file: string): Promise<void> {
  try {
    await system.unlink(file);
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}

/**
 * What the old master re-executes to retire: php-fpm's reload lets the requests in flight finish
 * (process_control_timeout), then runs its cleanup for re-execution, which keeps the listen
 * paths and the pidfile (only a normal exit unlinks them), and execvp()s its launch path: pointed
 * here for that moment, it exits at once, and nothing of the new master's is unlinked.
 */
const RETIRE_PROGRAM = '/bin/true';

/**
 * Retires the old master by a reload into RETIRE_PROGRAM: only for a master launched through the
 * controller's symlink. The symlink names RETIRE_PROGRAM from just before the signal until the
 * old master has re-executed (its /proc/PID/exe is no longer php-fpm) or the stop timeout; then
 * the instance's binary again. Returns whether the old master is gone; false: the caller stops it.
 */
async function retireByReload(ctx: ControlContext, target: DeclaredTarget, inspection: RunningInspection, launchPath: string): Promise<boolean> {
  const { system } = ctx;
  const { instance } = target;
  const old = inspection.master;
  if (target.record?.launchPath !== launchPath) return false;
  try {
    if ((await system.stat(RETIRE_PROGRAM)).kind !== 'file') return false;
    await pointLaunchLink(system, ctx.runDir, instance.name, RETIRE_PROGRAM);
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return false;
  }
  let restored = false;
  let keepRetireLink = false;
  const restore = async (): Promise<void> => {
    if (restored) return;
    restored = true;
    await pointLaunchLink(system, ctx.runDir, instance.name, instance.binary);
  };
  try {
    const sent = await signalVerified(system, old.pid, 'SIGUSR2', inspection.identity);
    if (sent.outcome !== 'sent') {
      await restore();
      return sent.outcome === 'gone';
    }
    const deadline = system.now() + instance.stopTimeoutMs;
    for (;;) {
      const now = await readProcess(system, old.pid);
      if (isGone(old, now)) {
        await restore();
        return true;
      }
      // Re-executed: the symlink has served; the instance's binary again, for the new master's reloads.
      if (now !== null && now.exe !== old.exe) await restore();
      if (system.now() >= deadline) {
        // Still finishing requests: it is stopped by the caller. Until it is gone the symlink
        // keeps naming RETIRE_PROGRAM, so that this old master never comes back as php-fpm.
        keepRetireLink = true;
        return false;
      }
      await system.sleep(POLL_INTERVAL_MS);
    }
  } finally {
    if (!keepRetireLink) await restore();
  }
}

/** Whether `file` exists (lstat), for the watch on the old master's unlink. */
async function exists(system: System, file: string): Promise<boolean> {
  try {
    await system.lstat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the sockets at `addresses` must not be handed over, or null. The controller (root) binds
 * each new socket at a temporary name in the listen path's directory, then chowns and chmods it
 * by path: chmod has no variant that leaves a symlink alone, so whoever else may write the
 * directory (or an ancestor, or a symlink on the way) could rename a symlink over the new name in
 * between and have root give any file the socket's owner and mode. Only in a directory nobody
 * else may write is the name the controller's from bind to chmod.
 */
export async function describeUnsafeHandover(system: System, addresses: readonly string[]): Promise<string | null> {
  for (const dir of new Set(addresses.map((address) => path.dirname(address)))) {
    const writer = await describeSocketDirWriter(system, dir);
    if (writer !== null) return `${writer}: another user may write there, and could swap a symlink in for the new socket before it is chowned`;
  }
  return null;
}

/** What a restart's hand-over did: restarted the instance (or left it serving), or did not apply and why, if worth saying. */
export type HandoverResult = { kind: 'handed'; outcome: Outcome } | { kind: 'not-handed'; why: string | null };

const NOT_HANDED: HandoverResult = { kind: 'not-handed', why: null };

/** The outcome of the stop and start that replaced a hand-over, saying why there was none (when worth saying). */
export function withoutHandover(outcome: Outcome, result: HandoverResult & { kind: 'not-handed' }): Outcome {
  return result.why === null ? outcome : { ...outcome, message: `${outcome.message} (not handed over: ${result.why}; restarted by stop and start)` };
}

/**
 * Restart of a running instance with its sockets handed over; not-handed when it does not apply
 * (then the caller restarts by stop and start). The config test was made by the caller.
 */
export async function restartWithHandover(ctx: ControlContext, target: DeclaredTarget): Promise<HandoverResult> {
  const { system } = ctx;
  const { instance } = target;
  if (target.record === null || target.record.pidfile !== instance.pidfile || target.record.config !== instance.config) return NOT_HANDED;
  const inspection = await inspectTarget(system, target);
  if (inspection.state !== 'running' || !inspection.recorded) return NOT_HANDED;
  const planned = await planSockets(system, target);
  if (planned === null) return NOT_HANDED;
  const unsafe = await describeUnsafeHandover(system, planned.map((p) => p.address));
  if (unsafe !== null) return { kind: 'not-handed', why: unsafe };
  const outcome = await handOver(ctx, target, inspection, planned);
  return outcome === null ? NOT_HANDED : { kind: 'handed', outcome };
}

async function handOver(
  ctx: ControlContext, target: DeclaredTarget, inspection: RunningInspection, planned: Array<{ address: string; stat: FileStat }>,
): Promise<Outcome | null> {
  const { system } = ctx;
  const { instance, errorLog, pools } = target;
  const old = inspection.master;
  const sockets: HandedSocket[] = planned.map(({ address, stat }) => {
    const base = handoverBindPath(address, system.pid);
    return { address, stat, temp: base, publish: `${base}.publish`, spare: `${base}.spare`, oldSpare: `${base}.old`, listening: null };
  });
  const names = (s: HandedSocket): string[] => [s.temp, s.publish, s.spare, s.oldSpare];
  const closeAll = async (): Promise<void> => {
    for (const s of sockets) {
      if (s.listening !== null) await s.listening.close();
      s.listening = null;
      await removeQuietly(system, s.temp);
    }
  };
  const left = (why: string): Outcome => fail(instance.name, `not restarted, left as it was (pid ${old.pid} still serves): ${why}`);
  const identity = await declaredIdentity(system, instance);
  // user=: the account php-fpm runs as; one that cannot be used restarts by stop and start, which names why.
  const account = await prepareAccount(system, ctx.runDir, instance);
  if ('problem' in account) return null;
  const launchTicks = await readUptimeTicks(system);
  const launched: ExpectedMaster = { ...identity, startedAfterTicks: launchTicks };
  const seconds = instance.startTimeoutMs / 1000;
  let master: ProcessInfo | null = null;
  /** Stops the new master (it unlinks the listen paths and the pidfile at exit) and puts the old names back. */
  const undo = async (): Promise<string> => {
    let note = '';
    try {
      await stopMastersOfLaunch(system, launched, new Set([old.pid]), instance.stopTimeoutMs);
    } catch (error) {
      if (!(error instanceof FpmMultiError)) throw error;
      note = `; the new master could not be stopped (${error.message})`;
    }
    for (const s of sockets) {
      if (!(await exists(system, s.address)) && (await exists(system, s.oldSpare))) await system.rename(s.oldSpare, s.address);
      for (const name of names(s)) await removeQuietly(system, name);
    }
    await system.writeFileAtomic(instance.pidfile, String(old.pid), PIDFILE_MODE);
    await removeLaunchIntent(system, ctx.runDir, instance.name);
    return note;
  };
  try {
    for (const s of sockets) {
      for (const name of names(s)) await removeQuietly(system, name); // a previous run's leftovers
      await system.link(s.address, s.oldSpare);
      s.listening = await system.listenUnix(s.temp, { uid: s.stat.uid, gid: s.stat.gid, mode: s.stat.mode });
      // Two more names of each new socket before the controller's descriptor is closed (which
      // unlinks the temporary name): one to publish, one to put back after the old master's exit.
      await system.link(s.temp, s.publish);
      await system.link(s.temp, s.spare);
    }
  } catch (error) {
    await closeAll();
    for (const s of sockets) for (const name of names(s)) await removeQuietly(system, name);
    if (errnoCode(error) === undefined && !(error instanceof FpmMultiError)) throw error;
    return null; // the sockets cannot be prepared (nothing was launched): the caller restarts by stop and start
  }
  await writeLaunchIntent(system, ctx.runDir, {
    name: instance.name, binary: identity.binary, config: identity.config, pidfile: instance.pidfile, uid: identity.uid ?? system.uid, launchTicks,
    deadlineTicks: launchTicks + Math.ceil(seconds * CLOCK_TICKS_PER_SECOND) + CLOCK_TICKS_PER_SECOND,
    ...(ctx.declaration === undefined ? {} : { declaration: ctx.declaration }),
  });
  const launchPath = await pointLaunchLink(system, ctx.runDir, instance.name, instance.binary);
  const invocation = buildLaunch(instance, ctx.path, launchPath, account.runAs);
  // Inherited descriptors 3, 4, … in the order of FPM_SOCKETS; the key is the listen address as the config writes it.
  const env = { ...invocation.env, FPM_SOCKETS: sockets.map((s, i) => `${s.address}=${3 + i}`).join(',') };
  const deadline = system.now() + instance.startTimeoutMs;
  const logOffset = await measureLog(system, errorLog);
  const result = await system.run(invocation.program, invocation.args, {
    env, timeoutMs: instance.startTimeoutMs, inheritFds: sockets.map((s) => s.listening!.fd),
    // The launcher holds its copies now: blocking for php-fpm's workers, and the controller's closed.
    afterSpawn: () => {
      for (const s of sockets) s.listening?.handOff();
    },
  });
  await closeAll();
  if (result.exitCode !== 0) {
    const note = await undo();
    const output = result.stderr.trim() !== '' ? result.stderr : await readLogSince(system, errorLog, logOffset);
    return left(`the new php-fpm ${result.timedOut ? `did not confirm start-up within ${seconds} s` : describeExit(result)}${note}${quoteOutput(output)}`);
  }
  master = await waitForMaster(system, instance.pidfile, launched, null, deadline);
  if (master === null) {
    const note = await undo();
    return left(`${instance.pidfile} did not name a new php-fpm master of ${instance.config} within ${seconds} s${note}`);
  }
  const record: InstanceRecord = {
    name: instance.name, binary: identity.binary, config: identity.config, pidfile: instance.pidfile, pid: master.pid,
    startTimeTicks: master.startTimeTicks, uid: identity.uid ?? system.uid, launchPath, launched: launchSettingsOf(instance),
    // Which declaration file started it: another file sharing the run directory never acts on it.
    ...(ctx.declaration === undefined ? {} : { declaration: ctx.declaration }),
  };
  try {
    await writeRecord(system, ctx.runDir, record);
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    const note = await undo();
    return left(`its record could not be written (${errnoCode(error)}), so the new master was stopped${note}`);
  }
  await removeLaunchIntent(system, ctx.runDir, instance.name);
  // Publish: each new socket takes its listen address; the old socket keeps only its spare name.
  for (const s of sockets) {
    await system.rename(s.publish, s.address);
    await removeQuietly(system, s.oldSpare);
  }
  await system.sleep(BACKLOG_DRAIN_MS);
  // Best: the old master retires by its own reload into RETIRE_PROGRAM, which unlinks nothing.
  const retired = await retireByReload(ctx, target, inspection, launchPath);
  // Else (launched directly, or it did not retire in time) a graceful stop, whose exit unlinks
  // each listen path (now the new socket's name): the spare name is put back the moment it is gone.
  let stopping = !retired;
  const watch = (async (): Promise<void> => {
    const pending = new Set(sockets);
    while (pending.size > 0 && stopping) {
      for (const s of [...pending]) {
        if (!(await exists(system, s.address))) {
          // Best effort here; the check after the stop puts any name still missing back.
          await system.rename(s.spare, s.address).catch(() => undefined);
          pending.delete(s);
        }
      }
      await system.sleep(UNLINK_WATCH_MS);
    }
  })();
  let stopNote = '';
  try {
    if (!retired) await stopMaster(system, await listStats(system), old, inspection.identity, instance.stopTimeoutMs);
  } catch (error) {
    if (!(error instanceof FpmMultiError)) throw error;
    stopNote = `; the old master (pid ${old.pid}) did not stop: ${error.message}`;
  } finally {
    stopping = false;
    await watch;
  }
  for (const s of sockets) {
    if (!(await exists(system, s.address)) && (await exists(system, s.spare))) await system.rename(s.spare, s.address);
    for (const name of names(s)) await removeQuietly(system, name);
  }
  // The old master is gone: the symlink names the instance's binary (the new master's reloads).
  await pointLaunchLink(system, ctx.runDir, instance.name, instance.binary);
  // The old master removed the pidfile at its exit: it names the new master again.
  await system.writeFileAtomic(instance.pidfile, String(master.pid), PIDFILE_MODE);
  const readiness = await waitUntilPoolsAnswer(system, pools, deadline);
  if (readiness.failures.length > 0) {
    return fail(instance.name, `restart failed: ${describeNotReady(readiness, seconds, `though its new master (pid ${old.pid} → ${master.pid}) runs; it was left running`)}`);
  }
  const how = retired ? 'the old master retired by reload' : 'the old master stopped';
  const outcome = succeed(instance.name, `restarted (pid ${old.pid} → ${master.pid}), listening sockets handed over, ${how}${describeReady(readiness)}${stopNote}`);
  return stopNote === '' ? outcome : { ...outcome, ok: false };
}
