// Start, stop, reload, reopen and test one instance. Every signal goes through signalVerified
// (identity checked against /proc right before it); the system is injected.
import { FpmMultiError } from '../errors.js';
import { describeFastCgiAddress } from '../fastcgi/fastcgi.js';
import type { FpmPool } from '../php-fpm/config/types.js';
import { DEFAULT_STOP_TIMEOUT_S } from '../model/instance.js';
import { declaredIdentity, inspectedPidfile, inspectTarget, pidfileOf, type Inspection, type RunningInspection, type Target } from './inspect.js';
import { buildConfigTest, buildLaunch, type UsableInstance } from '../model/invocation.js';
import { checkPidfileTrust, PidfileContentError, readTrustedPidfile } from './pidfile.js';
import {
  CLOCK_TICKS_PER_SECOND, listStats, readLiveStat, readProcess, readUptimeTicks, verifyIdentity,
  type ExpectedMaster, type ExpectedWorker, type ProcessInfo, type ProcStat,
} from './proc.js';
import { pingPool, PoolAddressError, resolvePoolAddress } from '../php-fpm/pools.js';
import {
  launchIntentPath, readLaunchIntent, recordPath, removeLaunchIntent, removeRecord, writeLaunchIntent, writeRecord, type InstanceRecord,
} from './record.js';
import { signalVerified, type FpmSignal } from './signal.js';
import { ERROR_LOG_TAIL_MAX_BYTES, errnoCode, type RunResult, type System } from './system.js';

/** How often a waiting operation looks at /proc again: fine enough that stop returns promptly. */
export const POLL_INTERVAL_MS = 10;
/** After SIGTERM (workers are killed mid-request), how long before SIGKILL. */
export const TERM_GRACE_MS = 5_000;
/** After SIGKILL, how long the kernel may take to tear the processes down. */
export const KILL_WAIT_MS = 5_000;
/**
 * One readiness ping: short, so that a request lost to a pool still coming up is retried well
 * before start_timeout; a started pool answers in about a millisecond.
 */
export const READINESS_PING_TIMEOUT_MS = 1_000;
/** A pool still gets one fair try when the master itself used up start_timeout. */
const READINESS_MIN_PING_TIMEOUT_MS = 100;
/**
 * How long an empty pidfile must stay empty before start removes it: php-fpm writes its pidfile
 * by unlink + creat + write, so an empty one is either that instant or a write that failed.
 */
const EMPTY_PIDFILE_SETTLE_MS = 500;
/** How much of php-fpm's own output a failure shows. */
const MESSAGE_MAX_LINES = 20;

export interface ControlContext {
  system: System;
  runDir: string;
  /** PATH for php-fpm (the controller's own, or a default). */
  path: string | undefined;
  /** The declaration file, for messages ("not started by <file>"). */
  conf?: string;
}

export interface Outcome {
  name: string;
  ok: boolean;
  /** What happened, in words: `started (pid 1234)`, or why it failed with php-fpm's message. */
  message: string;
}

const succeed = (name: string, message: string): Outcome => ({ name, ok: true, message });
const fail = (name: string, message: string): Outcome => ({ name, ok: false, message });

/** php-fpm's output, trimmed to its last lines, indented under our message. */
function quoteOutput(text: string): string {
  const lines = text.split('\n').map((line) => line.trimEnd()).filter((line) => line !== '');
  if (lines.length === 0) return '';
  return `\n    ${lines.slice(-MESSAGE_MAX_LINES).join('\n    ')}`;
}

function describeExit(result: RunResult): string {
  if (result.timedOut) return 'did not finish in time and was killed';
  return result.signal !== null ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
}

/** Where an error log ends now, so that a failure shows only the lines php-fpm added. */
async function measureLog(system: System, errorLog: string | null): Promise<number> {
  if (errorLog === null) return 0;
  try {
    return (await system.stat(errorLog)).size;
  } catch {
    return 0;
  }
}

async function readLogSince(system: System, errorLog: string | null, offset: number): Promise<string> {
  if (errorLog === null) return '';
  try {
    return await system.readFile(errorLog, { maxBytes: ERROR_LOG_TAIL_MAX_BYTES, offset });
  } catch {
    return '';
  }
}

/** php-fpm's own configuration test with the instance's flags. */
export async function testConfig(ctx: ControlContext, instance: UsableInstance): Promise<Outcome> {
  const test = buildConfigTest(instance, ctx.path);
  const result = await ctx.system.run(test.program, test.args, { env: test.env, timeoutMs: instance.startTimeoutMs });
  if (result.exitCode === 0) return succeed(instance.name, 'configuration ok');
  return fail(instance.name, `configuration test failed: ${test.program} --test ${describeExit(result)}${quoteOutput(result.stderr + result.stdout)}`);
}

function isGone(proc: ProcessInfo, current: { startTimeTicks: number } | null): boolean {
  return current === null || current.startTimeTicks !== proc.startTimeTicks;
}

/** Waits until every process is gone (exited, a zombie, or its pid reused), or the deadline. */
async function waitUntilGone(system: System, processes: readonly ProcessInfo[], timeoutMs: number): Promise<ProcessInfo[]> {
  const deadline = system.now() + timeoutMs;
  let alive = [...processes];
  for (;;) {
    // One read of /proc/PID/stat per process and poll: its start time tells a reused pid apart.
    const checks = await Promise.all(alive.map(async (proc) => (isGone(proc, await readLiveStat(system, proc.pid)) ? null : proc)));
    alive = checks.filter((proc): proc is ProcessInfo => proc !== null);
    if (alive.length === 0 || system.now() >= deadline) return alive;
    await system.sleep(POLL_INTERVAL_MS);
  }
}

/** Process tables read once per command and shared by all its instances (see readProcessTable). */
const processTables = new WeakMap<ControlContext, Promise<ProcStat[]>>();

/**
 * The process table of this command, read on first use: finding N instances' workers costs one
 * scan of /proc, not N. Workers forked later are caught by the fresh scan of an escalation.
 */
function readProcessTable(ctx: ControlContext): Promise<ProcStat[]> {
  let table = processTables.get(ctx);
  if (table === undefined) {
    table = listStats(ctx.system);
    processTables.set(ctx, table);
  }
  return table;
}

/**
 * Workers of a master (or of a dead master's session), each verified to be php-fpm's: a pool
 * title, the master's binary, its session, and started no earlier than the master.
 */
async function findWorkers(
  system: System, table: readonly ProcStat[], binary: string, sessionId: number, masterStartTicks: number | undefined,
): Promise<ProcessInfo[]> {
  const members = table.filter((stat) => stat.sessionId === sessionId && stat.pid !== sessionId);
  const candidates = await Promise.all(members.map((stat) => readProcess(system, stat.pid)));
  return candidates.filter(
    (proc): proc is ProcessInfo => proc !== null && verifyIdentity(proc, workerIdentity(binary, sessionId, masterStartTicks)).ok,
  );
}

function workerIdentity(binary: string, sessionId: number, masterStartTicks: number | undefined): ExpectedWorker {
  return { role: 'worker', binary, sessionId, ...(masterStartTicks === undefined ? {} : { startedAfterTicks: masterStartTicks }) };
}

async function signalWorkers(system: System, workers: readonly ProcessInfo[], signal: FpmSignal, binary: string): Promise<void> {
  await Promise.all(workers.map((worker) => signalVerified(system, worker.pid, signal, { role: 'worker', binary, sessionId: worker.sessionId })));
}

/**
 * Ends the workers a SIGKILLed master left behind (they keep its listen socket, and the next
 * php-fpm would exit 70 "Another FPM instance seems to already listen"). Returns how many.
 *
 * A worker is an orphan of this instance only when its session leader is gone: Linux does not
 * hand out a pid again while a session of that id still has members, so when a live process has
 * the dead master's pid, the members of that session are that process's (a recycled pid, e.g.
 * another instance's master), never our orphans. Each must also have a pool title, run the
 * recorded binary and have started after the recorded master.
 */
async function endOrphanWorkers(ctx: ControlContext, binary: string, masterPid: number, masterStartTicks: number | undefined): Promise<number> {
  const { system } = ctx;
  if ((await readLiveStat(system, masterPid)) !== null) return 0;
  const workers = await findWorkers(system, await readProcessTable(ctx), binary, masterPid, masterStartTicks);
  if (workers.length === 0) return 0;
  await signalWorkers(system, workers, 'SIGTERM', binary);
  const left = await waitUntilGone(system, workers, TERM_GRACE_MS);
  await signalWorkers(system, left, 'SIGKILL', binary);
  const stuck = await waitUntilGone(system, left, KILL_WAIT_MS);
  if (stuck.length > 0) throw new FpmMultiError(`orphaned php-fpm workers ${stuck.map((p) => p.pid).join(', ')} did not exit after SIGKILL`);
  return workers.length;
}

/** Removes the pidfile only while it still names `pid`: a new master may have written its own. */
async function removePidfileOf(system: System, pidfile: string, pid: number | null): Promise<void> {
  try {
    if ((await readTrustedPidfile(system, pidfile)) !== pid) return;
    await system.unlink(pidfile);
  } catch (error) {
    if (error instanceof PidfileContentError && pid === null) {
      await system.unlink(pidfile);
      return;
    }
    if (errnoCode(error) !== 'ENOENT' && !(error instanceof FpmMultiError)) throw error;
  }
}

/** Forgets a dead master: its orphaned workers, its pidfile and its record. */
async function cleanUpCrashed(ctx: ControlContext, target: Target, inspection: Inspection): Promise<string> {
  const binary = inspection.identity?.binary ?? target.record?.binary;
  // The recorded start time bounds the workers when the dead pid is the recorded one.
  const masterStart = target.record !== null && target.record.pid === inspection.pid ? target.record.startTimeTicks : undefined;
  const ended = inspection.pid !== null && binary !== undefined ? await endOrphanWorkers(ctx, binary, inspection.pid, masterStart) : 0;
  // Best effort: on a full or read-only run directory, stop still succeeds for what is not running.
  const pidfile = inspectedPidfile(target);
  const notes = (await bestEffort(pidfile, () => removePidfileOf(ctx.system, pidfile, inspection.pid))) +
    (await bestEffort(recordPath(ctx.runDir, target.name), () => removeRecord(ctx.system, ctx.runDir, target.name)));
  return `${ended > 0 ? `; ended ${ended} orphaned worker${ended === 1 ? '' : 's'}` : ''}${notes}`;
}

/** Runs a clean-up step whose failure (a full or read-only run directory) must not hide the outcome. */
async function bestEffort(what: string, step: () => Promise<void>): Promise<string> {
  try {
    await step();
    return '';
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined) throw error;
    return `; could not remove ${what} (${code})`;
  }
}

/**
 * QUIT, then TERM after stop_timeout, then KILL: returns the signal that ended it, or throws.
 * A graceful master exits only after its workers, so waiting on those in `table` suffices; an
 * escalation scans /proc afresh, so that workers forked since (ondemand, dynamic) are reached.
 */
async function stopMaster(
  system: System, table: readonly ProcStat[], master: ProcessInfo, identity: ExpectedMaster, stopTimeoutMs: number,
): Promise<FpmSignal> {
  const workers = await findWorkers(system, table, identity.binary, master.pid, master.startTimeTicks);
  const everything = [master, ...workers];
  const steps: Array<[FpmSignal, number]> = [['SIGQUIT', stopTimeoutMs], ['SIGTERM', TERM_GRACE_MS], ['SIGKILL', KILL_WAIT_MS]];
  let alive = everything;
  for (const [signal, waitMs] of steps) {
    if (alive.includes(master)) {
      const result = await signalVerified(system, master.pid, signal, identity);
      if (result.outcome === 'mismatch') throw new FpmMultiError(`not signalled: ${result.reason}`);
    }
    // Workers are left to their master's graceful stop; only escalations reach them directly.
    if (signal !== 'SIGQUIT') {
      const known = alive.filter((proc) => proc !== master);
      const late = (await findWorkers(system, await listStats(system), identity.binary, master.pid, master.startTimeTicks)).filter(
        (proc) => !known.some((worker) => worker.pid === proc.pid),
      );
      alive = [...alive, ...late];
      await signalWorkers(system, [...known, ...late], signal, identity.binary);
    }
    alive = await waitUntilGone(system, alive, waitMs);
    if (alive.length === 0) return signal;
  }
  throw new FpmMultiError(`pids ${alive.map((proc) => proc.pid).join(', ')} did not exit even after SIGKILL (stuck in the kernel?)`);
}

function describeEscalation(signal: FpmSignal, stopTimeoutMs: number): string {
  if (signal === 'SIGQUIT') return '';
  return signal === 'SIGTERM'
    ? ` after SIGTERM: it ignored SIGQUIT for ${stopTimeoutMs / 1000} s`
    : ` after SIGKILL: it ignored SIGQUIT and SIGTERM`;
}

/** The record of a master of ours: what it is and who runs it. */
function recordOf(name: string, identity: ExpectedMaster, pidfile: string, master: ProcessInfo, uid: number): InstanceRecord {
  return { name, binary: identity.binary, config: identity.config, pidfile, pid: master.pid, startTimeTicks: master.startTimeTicks, uid: identity.uid ?? uid };
}

/**
 * Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). What is
 * stopped is what the record names (binary, config, start time), whatever the file says now.
 */
async function stopTargetUnguarded(ctx: ControlContext, target: Target): Promise<Outcome> {
  const { system } = ctx;
  const inspection = await inspectTarget(system, target);
  const record = recordPath(ctx.runDir, target.name);
  switch (inspection.state) {
    case 'stopped': {
      if (!inspection.interruptedStop) return succeed(target.name, 'not running');
      // The pidfile may still name the master that stop ended (php-fpm removes it only on a clean exit).
      const pidfile = inspectedPidfile(target);
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
      const stopTimeoutMs = target.instance?.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_S * 1000;
      const pidfile = inspectedPidfile(target);
      // The intent first, so that a controller killed mid-stop leaves "stopped", not "crashed".
      // Best effort: a full or read-only run directory must never keep an instance from stopping.
      const running = recordOf(target.name, inspection.identity, pidfile, inspection.master, system.uid);
      await bestEffort(record, () => writeRecord(system, ctx.runDir, { ...running, stopping: true }));
      let signal: FpmSignal;
      try {
        signal = await stopMaster(system, await readProcessTable(ctx), inspection.master, inspection.identity, stopTimeoutMs);
      } catch (error) {
        // Not stopped: a later death of this master is a crash again, not the end of a stop.
        await bestEffort(record, () => writeRecord(system, ctx.runDir, running));
        throw error;
      }
      const notes = (await bestEffort(pidfile, () => removePidfileOf(system, pidfile, inspection.pid))) +
        (pidfile === pidfileOf(target) ? '' : await bestEffort(pidfileOf(target), () => removePidfileOf(system, pidfileOf(target), inspection.pid))) +
        (await bestEffort(record, () => removeRecord(system, ctx.runDir, target.name)));
      return succeed(target.name, `stopped (pid ${inspection.pid})${describeEscalation(signal, stopTimeoutMs)}${notes}`);
    }
  }
}

/**
 * Polls the pidfile until it names a verified master other than `oldPid`, or the deadline. With
 * `old` (a reload), returns null as soon as the old master is gone and the pidfile names no new
 * one: the re-executed php-fpm writes its pidfile before its old process exits, so waiting on
 * would only wait out start_timeout for a master that died.
 */
async function waitForMaster(
  system: System, pidfile: string, expected: ExpectedMaster, old: ProcessInfo | null, deadline: number,
): Promise<ProcessInfo | null> {
  const named = async (): Promise<ProcessInfo | null> => {
    let pid: number | null = null;
    try {
      pid = await readTrustedPidfile(system, pidfile);
    } catch (error) {
      // php-fpm truncates and rewrites its pidfile: an empty read is a moment, not corruption.
      if (!(error instanceof PidfileContentError)) throw error;
    }
    if (pid === null || pid === old?.pid) return null;
    const proc = await readProcess(system, pid);
    return proc !== null && verifyIdentity(proc, expected).ok ? proc : null;
  };
  for (;;) {
    const found = await named();
    if (found !== null) return found;
    // Gone now: one more look, for a new master that wrote the pidfile just before the old exited.
    if (old !== null && isGone(old, await readLiveStat(system, old.pid))) return named();
    if (system.now() >= deadline) return null;
    await system.sleep(POLL_INTERVAL_MS);
  }
}

/** Session leaders of this command's process table with their identity, read once per command. */
const sessionLeaders = new WeakMap<ControlContext, Promise<ProcessInfo[]>>();

async function readLeaders(system: System, table: readonly ProcStat[]): Promise<ProcessInfo[]> {
  // A daemonized php-fpm master leads its own session: only session leaders can be masters.
  const leaders = await Promise.all(table.filter((stat) => stat.pid === stat.sessionId).map((stat) => readProcess(system, stat.pid)));
  return leaders.filter((proc): proc is ProcessInfo => proc !== null);
}

/** Masters of this binary, config and owner that run now (as the command's process table saw them). */
async function findRunningMasters(ctx: ControlContext, expected: ExpectedMaster): Promise<ProcessInfo[]> {
  let leaders = sessionLeaders.get(ctx);
  if (leaders === undefined) {
    leaders = readProcessTable(ctx).then((table) => readLeaders(ctx.system, table));
    sessionLeaders.set(ctx, leaders);
  }
  const live = await Promise.all((await leaders).map(async (proc) => (isGone(proc, await readLiveStat(ctx.system, proc.pid)) ? null : proc)));
  return live.filter((proc): proc is ProcessInfo => proc !== null && verifyIdentity(proc, expected).ok);
}

/**
 * Stops what a failed launch left running, and only that: masters of this binary, config and
 * owner that lead their own session, started after the launch began (`launched.startedAfterTicks`)
 * and were not running before it (`before`). A master somebody else runs is never among them.
 */
async function stopMastersOfLaunch(system: System, launched: ExpectedMaster, before: ReadonlySet<number>, stopTimeoutMs: number): Promise<number> {
  const table = await listStats(system); // fresh: the master was launched after any shared table
  const masters = (await readLeaders(system, table)).filter((proc) => !before.has(proc.pid) && verifyIdentity(proc, launched).ok);
  for (const master of masters) await stopMaster(system, table, master, { ...launched, startTimeTicks: master.startTimeTicks }, stopTimeoutMs);
  return masters.length;
}

/** What failed and how to fix it, for a write that failed in the run directory (rethrows a bug). */
function explainWriteFailure(error: unknown, file: string, dir: string): { what: string; fix: string } {
  const code = errnoCode(error);
  if (code === undefined) throw error;
  const fix = code === 'ENOSPC' || code === 'EDQUOT'
    ? `Free space in ${dir}`
    : code === 'EROFS' ? `${dir} is on a read-only file system: remount it read-write` : `Check that ${dir} is writable by the controller`;
  return { what: `cannot write ${file}: ${code}`, fix };
}

function describeWriteFailure(error: unknown, file: string, dir: string): string {
  const { what, fix } = explainWriteFailure(error, file, dir);
  return `${what}; ${fix}`;
}

/** A pool's address for messages: `unix:/run/a.sock`, `tcp:127.0.0.1:9000`, else its listen value. */
function describePoolListen(pool: FpmPool): string {
  if (pool.listen === null) return 'no listen';
  try {
    return describeFastCgiAddress(resolvePoolAddress(pool.listen));
  } catch {
    return pool.listen;
  }
}

/** Pings one pool until it answers its ping.response or the deadline passes; returns why not, or null. */
async function waitUntilPoolAnswers(system: System, pool: FpmPool, deadline: number): Promise<string | null> {
  for (;;) {
    const remainingMs = deadline - system.now();
    try {
      await pingPool(pool, Math.min(READINESS_PING_TIMEOUT_MS, Math.max(READINESS_MIN_PING_TIMEOUT_MS, remainingMs)));
      return null;
    } catch (error) {
      if (!(error instanceof FpmMultiError)) throw error;
      if (error instanceof PoolAddressError || system.now() >= deadline) return error.message;
    }
    await system.sleep(POLL_INTERVAL_MS);
  }
}

interface Readiness {
  /** Pools with a ping.path that answered it. */
  ready: string[];
  /** One line per pool that did not answer in time: the pool, its address and the last error. */
  failures: string[];
}

/**
 * Readiness: a live master does not mean PHP is served. Every pool with a ping.path is pinged
 * (all at once, each retried every POLL_INTERVAL_MS) until it answers or the deadline passes.
 */
async function waitUntilPoolsAnswer(system: System, pools: readonly FpmPool[], deadline: number): Promise<Readiness> {
  const pingable = pools.filter((pool) => pool.pingPath !== null);
  const errors = await Promise.all(pingable.map((pool) => waitUntilPoolAnswers(system, pool, deadline)));
  const readiness: Readiness = { ready: [], failures: [] };
  pingable.forEach((pool, index) => {
    const error = errors[index];
    if (error === null || error === undefined) readiness.ready.push(pool.name);
    else readiness.failures.push(`pool '${pool.name}' (${describePoolListen(pool)}) did not answer ping ${pool.pingPath} with ${JSON.stringify(pool.pingResponse)}: ${error}`);
  });
  return readiness;
}

function describeReady(readiness: Readiness): string {
  return readiness.ready.length === 0 ? '' : `; ready: ${readiness.ready.join(', ')} answer${readiness.ready.length === 1 ? 's' : ''} ping`;
}

/** `<what failed>, <consequence>:` then one indented line per pool that did not answer. */
function describeNotReady(readiness: Readiness, seconds: number, consequence: string): string {
  const pools = readiness.failures.length === 1 ? 'a pool' : `${readiness.failures.length} pools`;
  return `${pools} did not answer within ${seconds} s (start_timeout; raise it if the pool is only slow to start), ${consequence}:` +
    `\n    ${readiness.failures.join('\n    ')}`;
}

function describeUnowned(ctx: ControlContext, instance: UsableInstance, running: readonly ProcessInfo[]): string {
  const pids = running.map((proc) => proc.pid).join(', ');
  return `a php-fpm master of ${instance.config} already runs (pid ${pids}), not started by ${ctx.conf ?? 'this declaration file'}; ` +
    'stop it first or remove the duplicate.';
}

/**
 * What `start` would refuse for a master of this instance's binary, config and owner that this
 * declaration did not start (no record, its pidfile does not name it), or null: for `check`, which
 * reports whatever start would refuse. (A master that an interrupted launch of ours left is
 * reported too; start adopts it.)
 */
export async function describeUnownedMaster(ctx: ControlContext, target: Target): Promise<string | null> {
  if (target.instance === null) return null;
  const inspection = await inspectTarget(ctx.system, target);
  if (inspection.state === 'running' || inspection.state === 'orphan') return null;
  const running = await findRunningMasters(ctx, await declaredIdentity(ctx.system, target.instance));
  return running.length === 0 ? null : describeUnowned(ctx, target.instance, running);
}

/** Writes the record of a master found running without one (adoption); returns a note or a failure. */
async function adopt(ctx: ControlContext, target: Target, inspection: RunningInspection, how: string): Promise<Outcome> {
  const pidfile = target.record?.pidfile ?? pidfileOf(target);
  const record = recordPath(ctx.runDir, target.name);
  try {
    await writeRecord(ctx.system, ctx.runDir, recordOf(target.name, inspection.identity, pidfile, inspection.master, ctx.system.uid));
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
 * Only what this declaration started (its record), what its pidfile names, or what its own launch
 * created is ever acted on. A master of the same binary, config and owner running without any of
 * those (started by hand, by a per-slot init script, or by another declaration file) makes start
 * refuse before launching: it is reported, never signalled.
 */
async function startInstanceUnguarded(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  const { system } = ctx;
  const instance = target.instance!;
  const inspection = await inspectTarget(system, target);
  let note = '';
  let emptyPidfile = false;
  switch (inspection.state) {
    case 'running':
      // Found by its pidfile (a record lost, or a controller killed mid-start): adopted, not restarted.
      if (!inspection.recorded) return adopt(ctx, target, inspection, `${instance.pidfile} names it`);
      return succeed(instance.name, `already running (pid ${inspection.pid})`);
    case 'unknown':
      if (!inspection.emptyPidfile || target.record !== null) return fail(instance.name, `not started: ${inspection.detail}`);
      emptyPidfile = true; // decided below, once no master of ours is known to run
      break;
    case 'stale':
      await system.unlink(inspectedPidfile(target));
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
  // A launch of ours that its controller did not live to finish: its master is adopted.
  const intent = await readLaunchIntent(system, ctx.runDir, instance.name);
  if (intent !== null) {
    const launched = running.filter(
      (proc) => intent.binary === identity.binary && intent.config === identity.config && intent.uid === identity.uid &&
        intent.pidfile === instance.pidfile && proc.startTimeTicks >= intent.launchTicks && proc.startTimeTicks <= intent.deadlineTicks,
    );
    if (launched.length === 1) {
      const master = launched[0]!;
      const found: RunningInspection = {
        state: 'running', pid: master.pid, master, identity: { ...identity, startTimeTicks: master.startTimeTicks }, detail: '', recorded: false,
      };
      return adopt(ctx, target, found, 'an interrupted start had launched it');
    }
    await removeLaunchIntent(system, ctx.runDir, instance.name);
  }
  if (running.length > 0) return fail(instance.name, `not started: ${describeUnowned(ctx, instance, running)} Nothing was signalled.`);
  if (emptyPidfile) {
    // Safe to remove: it is trusted (root-owned, in a root-only directory), holds no pid so it
    // names no process, no record of ours names a master, no master of this binary, config and
    // owner runs, and it stayed empty (not a pidfile php-fpm is writing at this instant). It is
    // what a php-fpm that could not write it (ENOSPC) leaves, and it would block every start.
    if (!(await staysEmpty(system, instance.pidfile))) return fail(instance.name, `not started: ${inspection.detail}`);
    await system.unlink(instance.pidfile);
    note = `; removed the empty pidfile ${instance.pidfile} (no master of it runs)`;
  }
  const test = await testConfig(ctx, instance);
  if (!test.ok) return fail(instance.name, `not started: ${test.message}`);
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
    });
  } catch (error) {
    return fail(instance.name, `not started: ${describeWriteFailure(error, launchIntentPath(ctx.runDir, instance.name), ctx.runDir)}. Nothing was launched`);
  }
  const deadline = system.now() + instance.startTimeoutMs;
  const logOffset = await measureLog(system, errorLog);
  const launch = buildLaunch(instance, ctx.path);
  const result = await system.run(launch.program, launch.args, { env: launch.env, timeoutMs: instance.startTimeoutMs });
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
    await writeRecord(system, ctx.runDir, recordOf(instance.name, identity, instance.pidfile, master, system.uid));
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

/** Why a reload of the recorded master would not do what the file now says; null when it would. */
function describeRecordChange(target: Target, declared: ExpectedMaster): string | null {
  const { record, instance } = target;
  if (record === null || instance === null) return null;
  const restart = `run php-fpm-multi restart ${target.name}`;
  if (record.binary !== declared.binary) return `the binary changed (${record.binary} → ${declared.binary}): ${restart}`;
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
async function reloadInstanceUnguarded(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  const { system } = ctx;
  const instance = target.instance!;
  const inspection = await inspectTarget(system, target);
  if (inspection.state !== 'running') {
    return fail(instance.name, `not reloaded: not running (${inspection.state}${inspection.detail === '' ? '' : `: ${inspection.detail}`}); start it`);
  }
  const changed = describeRecordChange(target, await declaredIdentity(system, instance));
  if (changed !== null) return fail(instance.name, `not reloaded, the running master (pid ${inspection.pid}) keeps serving: ${changed}`);
  const test = await testConfig(ctx, instance);
  if (!test.ok) return fail(instance.name, `not reloaded, the running master keeps serving: ${test.message}`);
  const logOffset = await measureLog(system, errorLog);
  const old = inspection.master;
  const { startTimeTicks: _pinned, ...identity } = inspection.identity;
  // The new master is the old one's successor: same binary, config and owner, started after it.
  const expected: ExpectedMaster = { ...identity, startedAfterTicks: old.startTimeTicks };
  const deadline = system.now() + instance.startTimeoutMs;
  const sent = await signalVerified(system, old.pid, 'SIGUSR2', inspection.identity);
  if (sent.outcome !== 'sent') return fail(instance.name, `not reloaded: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  const master = await waitForMaster(system, instance.pidfile, expected, old, deadline);
  const seconds = instance.startTimeoutMs / 1000;
  if (master === null) {
    const stillOld = !isGone(old, await readProcess(system, old.pid));
    const what = stillOld ? `its master (pid ${old.pid}) did not come back from the reload` : `its master (pid ${old.pid}) died during the reload: the instance is down`;
    return fail(instance.name, `reload failed: ${what} within ${seconds} s${quoteOutput(await readLogSince(system, errorLog, logOffset))}`);
  }
  let recordNote = '';
  try {
    await writeRecord(system, ctx.runDir, recordOf(instance.name, identity, instance.pidfile, master, system.uid));
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
  return { ...succeed(instance.name, `reloaded (pid ${old.pid} → ${master.pid})${describeReady(readiness)}${recordNote}`), ok: recordNote === '' };
}

/**
 * A file operation the system refused (EACCES on a root-owned pidfile, ENOSPC, EROFS, …) is a
 * named failure of that instance with a fix, not an "internal error" aborting the command.
 */
async function guarded(name: string, verb: string, operation: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await operation();
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined || !(error instanceof Error)) throw error;
    const { path } = error as NodeJS.ErrnoException;
    const fix = code === 'EACCES' || code === 'EPERM'
      ? 'run php-fpm-multi as the user that owns it (root for a system install)'
      : code === 'ENOSPC' || code === 'EDQUOT' ? 'free space there' : code === 'EROFS' ? 'remount that file system read-write' : 'check that path';
    return fail(name, `not ${verb}: ${path === undefined ? error.message : `${path}: ${code} (${error.message})`}; ${fix}`);
  }
}

/**
 * Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). What is
 * stopped is what the record names (binary, config, start time), whatever the file says now.
 */
export function stopTarget(ctx: ControlContext, target: Target): Promise<Outcome> {
  return guarded(target.name, 'stopped', () => stopTargetUnguarded(ctx, target));
}

/** See startInstanceUnguarded. */
export function startInstance(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  return guarded(target.name, 'started', () => startInstanceUnguarded(ctx, target, errorLog, pools));
}

/** See reloadInstanceUnguarded. */
export function reloadInstance(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  return guarded(target.name, 'reloaded', () => reloadInstanceUnguarded(ctx, target, errorLog, pools));
}

/** SIGUSR1: php-fpm reopens its log files (after rotation). */
export async function reopenInstance(ctx: ControlContext, target: Target): Promise<Outcome> {
  const inspection = await inspectTarget(ctx.system, target);
  if (inspection.state !== 'running') return fail(target.name, `logs not reopened: not running (${inspection.state})`);
  const sent = await signalVerified(ctx.system, inspection.pid, 'SIGUSR1', inspection.identity);
  if (sent.outcome !== 'sent') return fail(target.name, `logs not reopened: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  return succeed(target.name, `log files reopened (pid ${inspection.pid})`);
}
