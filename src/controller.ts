// Start, stop, reload, reopen and test one instance. Every signal goes through signalVerified
// (identity checked against /proc right before it); the system is injected.
import { FpmMultiError } from './errors.js';
import { describeFastCgiAddress } from './fastcgi.js';
import type { FpmPool } from './fpm-config.js';
import { DEFAULT_STOP_TIMEOUT_S } from './model.js';
import { inspectTarget, pidfileOf, type Inspection, type Target } from './inspect.js';
import { buildConfigTest, buildLaunch, type UsableInstance } from './invocation.js';
import { checkPidfileTrust, PidfileContentError, readTrustedPidfile } from './pidfile.js';
import {
  listStats, readLiveStat, readProcess, resolveBinary, verifyIdentity,
  type ExpectedMaster, type ProcessInfo, type ProcStat,
} from './proc.js';
import { pingPool, PoolAddressError, resolvePoolAddress } from './pools.js';
import { removeRecord, writeRecord } from './record.js';
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
/** How much of php-fpm's own output a failure shows. */
const MESSAGE_MAX_LINES = 20;

export interface ControlContext {
  system: System;
  runDir: string;
  /** PATH for php-fpm (the controller's own, or a default). */
  path: string | undefined;
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

/** Workers of a master (or of a dead master's session), each verified to be php-fpm's. */
async function findWorkers(system: System, table: readonly ProcStat[], binary: string, sessionId: number): Promise<ProcessInfo[]> {
  const members = table.filter((stat) => stat.sessionId === sessionId && stat.pid !== sessionId);
  const candidates = await Promise.all(members.map((stat) => readProcess(system, stat.pid)));
  return candidates.filter(
    (proc): proc is ProcessInfo => proc !== null && verifyIdentity(proc, { role: 'worker', binary, sessionId }).ok,
  );
}

async function signalWorkers(system: System, workers: readonly ProcessInfo[], signal: FpmSignal, binary: string): Promise<void> {
  await Promise.all(workers.map((worker) => signalVerified(system, worker.pid, signal, { role: 'worker', binary, sessionId: worker.sessionId })));
}

/**
 * Ends the workers a SIGKILLed master left behind (they keep its listen socket, and the next
 * php-fpm would exit 70 "Another FPM instance seems to already listen"). Returns how many.
 */
async function endOrphanWorkers(ctx: ControlContext, binary: string, masterPid: number): Promise<number> {
  const { system } = ctx;
  const workers = await findWorkers(system, await readProcessTable(ctx), binary, masterPid);
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
  const ended = inspection.pid !== null && binary !== undefined ? await endOrphanWorkers(ctx, binary, inspection.pid) : 0;
  await removePidfileOf(ctx.system, pidfileOf(target), inspection.pid);
  await removeRecord(ctx.system, ctx.runDir, target.name);
  return ended > 0 ? `; ended ${ended} orphaned worker${ended === 1 ? '' : 's'}` : '';
}

/**
 * QUIT, then TERM after stop_timeout, then KILL: returns the signal that ended it, or throws.
 * A graceful master exits only after its workers, so waiting on those in `table` suffices; an
 * escalation scans /proc afresh, so that workers forked since (ondemand, dynamic) are reached.
 */
async function stopMaster(
  system: System, table: readonly ProcStat[], master: ProcessInfo, identity: ExpectedMaster, stopTimeoutMs: number,
): Promise<FpmSignal> {
  const workers = await findWorkers(system, table, identity.binary, master.pid);
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
      const late = (await findWorkers(system, await listStats(system), identity.binary, master.pid)).filter(
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

/** Graceful stop of a target; a stopped or crashed one succeeds (and is cleaned up). */
export async function stopTarget(ctx: ControlContext, target: Target): Promise<Outcome> {
  const { system } = ctx;
  const inspection = await inspectTarget(system, target);
  switch (inspection.state) {
    case 'stopped':
      return succeed(target.name, 'not running');
    case 'unknown':
      return fail(target.name, `not stopped: ${inspection.detail}`);
    case 'stale':
      await removeRecord(system, ctx.runDir, target.name);
      return succeed(target.name, `not running; ${inspection.detail}; nothing was signalled`);
    case 'crashed':
      return succeed(target.name, `was not running (${inspection.detail})${await cleanUpCrashed(ctx, target, inspection)}`);
    case 'running':
    case 'orphan': {
      const stopTimeoutMs = target.instance?.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_S * 1000;
      const signal = await stopMaster(system, await readProcessTable(ctx), inspection.master!, inspection.identity!, stopTimeoutMs);
      await removePidfileOf(system, pidfileOf(target), inspection.pid);
      await removeRecord(system, ctx.runDir, target.name);
      return succeed(target.name, `stopped (pid ${inspection.pid})${describeEscalation(signal, stopTimeoutMs)}`);
    }
  }
}

/** Polls the pidfile until it names a verified master other than `oldPid`, or the deadline. */
async function waitForMaster(
  system: System, instance: UsableInstance, expected: ExpectedMaster, oldPid: number | null, deadline: number,
): Promise<ProcessInfo | null> {
  for (;;) {
    let pid: number | null = null;
    try {
      pid = await readTrustedPidfile(system, instance.pidfile);
    } catch (error) {
      // php-fpm truncates and rewrites its pidfile: an empty read is a moment, not corruption.
      if (!(error instanceof PidfileContentError)) throw error;
    }
    if (pid !== null && pid !== oldPid) {
      const proc = await readProcess(system, pid);
      if (proc !== null && verifyIdentity(proc, expected).ok) return proc;
    }
    if (system.now() >= deadline) return null;
    await system.sleep(POLL_INTERVAL_MS);
  }
}

async function recordMaster(ctx: ControlContext, instance: UsableInstance, binary: string, master: ProcessInfo): Promise<void> {
  await writeRecord(ctx.system, ctx.runDir, {
    name: instance.name, binary, config: instance.config, pidfile: instance.pidfile, pid: master.pid, startTimeTicks: master.startTimeTicks,
  });
}

/**
 * Masters of this instance that run without a trustworthy pidfile (a launcher that failed after
 * forking): stopped so that a failed start leaves nothing half-started behind.
 */
async function stopUnrecordedMasters(system: System, expected: ExpectedMaster, stopTimeoutMs: number): Promise<number> {
  const table = await listStats(system); // fresh: the master was launched after any shared table
  const leaders = await Promise.all(table.filter((stat) => stat.pid === stat.sessionId).map((stat) => readProcess(system, stat.pid)));
  const masters = leaders.filter((proc): proc is ProcessInfo => proc !== null && verifyIdentity(proc, expected).ok);
  for (const master of masters) await stopMaster(system, table, master, { ...expected, startTimeTicks: master.startTimeTicks }, stopTimeoutMs);
  return masters.length;
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

/**
 * Idempotent start: config test, launch, verify the master the pidfile names, then wait until
 * every pool with a ping.path answers. A master whose pools never answer is stopped: a failed
 * start leaves nothing half-started, and the next start tries again from scratch.
 */
export async function startInstance(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  const { system } = ctx;
  const instance = target.instance!;
  const inspection = await inspectTarget(system, target);
  let note = '';
  switch (inspection.state) {
    case 'running':
      return succeed(instance.name, `already running (pid ${inspection.pid})`);
    case 'unknown':
      return fail(instance.name, `not started: ${inspection.detail}`);
    case 'stale':
      await system.unlink(instance.pidfile);
      note = `; removed the stale pidfile (${inspection.detail})`;
      break;
    case 'crashed':
      note = `; it had crashed (${inspection.detail})${await cleanUpCrashed(ctx, target, inspection)}`;
      break;
    case 'stopped':
    case 'orphan':
      break;
  }
  const test = await testConfig(ctx, instance);
  if (!test.ok) return fail(instance.name, `not started: ${test.message}`);
  await checkPidfileTrust(system, instance.pidfile);
  const expected: ExpectedMaster = { binary: await resolveBinary(system, instance.binary), config: instance.config };
  const deadline = system.now() + instance.startTimeoutMs;
  const logOffset = await measureLog(system, errorLog);
  const launch = buildLaunch(instance, ctx.path);
  const result = await system.run(launch.program, launch.args, { env: launch.env, timeoutMs: instance.startTimeoutMs });
  const seconds = instance.startTimeoutMs / 1000;
  if (result.exitCode !== 0) {
    const output = result.stderr.trim() !== '' ? result.stderr : await readLogSince(system, errorLog, logOffset);
    const cleaned = await stopUnrecordedMasters(system, expected, instance.stopTimeoutMs);
    const when = result.timedOut ? `did not confirm start-up within ${seconds} s (start_timeout) and was killed` : describeExit(result);
    return fail(instance.name, `start failed: php-fpm ${when}${cleaned > 0 ? '; stopped the master it had left' : ''}${quoteOutput(output)}`);
  }
  const master = await waitForMaster(system, instance, expected, null, deadline);
  if (master === null) {
    const cleaned = await stopUnrecordedMasters(system, expected, instance.stopTimeoutMs);
    return fail(
      instance.name,
      `start failed: php-fpm reported start-up, but ${instance.pidfile} did not name a php-fpm master of ${instance.config} within ${seconds} s (start_timeout)` +
        `${cleaned > 0 ? '; stopped the master it had left' : ''}${quoteOutput(await readLogSince(system, errorLog, logOffset))}`,
    );
  }
  // Recorded before the readiness wait, so that a stop reaches it even if this controller dies.
  await recordMaster(ctx, instance, expected.binary, master);
  const readiness = await waitUntilPoolsAnswer(system, pools, deadline);
  if (readiness.failures.length > 0) {
    let stopped = `so its master (pid ${master.pid}) was stopped`;
    try {
      await stopMaster(system, await listStats(system), master, { ...expected, startTimeTicks: master.startTimeTicks }, instance.stopTimeoutMs);
      await removePidfileOf(system, instance.pidfile, master.pid);
      await removeRecord(system, ctx.runDir, instance.name);
    } catch (error) {
      if (!(error instanceof FpmMultiError)) throw error;
      stopped = `and its master (pid ${master.pid}) could not be stopped (${error.message})`;
    }
    return fail(instance.name, `start failed: ${describeNotReady(readiness, seconds, stopped)}`);
  }
  return succeed(instance.name, `started (pid ${master.pid})${describeReady(readiness)}${note}`);
}

/**
 * Config test first (a broken config never reaches the running master), then SIGUSR2. php-fpm
 * re-executes itself and, daemonized, comes back under a new pid: success means the pidfile
 * names a new verified master; a master that died instead is a failed reload.
 */
export async function reloadInstance(ctx: ControlContext, target: Target, errorLog: string | null, pools: readonly FpmPool[]): Promise<Outcome> {
  const { system } = ctx;
  const instance = target.instance!;
  const inspection = await inspectTarget(system, target);
  if (inspection.state !== 'running') {
    return fail(instance.name, `not reloaded: not running (${inspection.state}${inspection.detail === '' ? '' : `: ${inspection.detail}`}); start it`);
  }
  const test = await testConfig(ctx, instance);
  if (!test.ok) return fail(instance.name, `not reloaded, the running master keeps serving: ${test.message}`);
  const logOffset = await measureLog(system, errorLog);
  const old = inspection.master!;
  const expected: ExpectedMaster = { binary: await resolveBinary(system, instance.binary), config: instance.config };
  const deadline = system.now() + instance.startTimeoutMs;
  const sent = await signalVerified(system, old.pid, 'SIGUSR2', inspection.identity!);
  if (sent.outcome !== 'sent') return fail(instance.name, `not reloaded: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  const master = await waitForMaster(system, instance, expected, old.pid, deadline);
  const seconds = instance.startTimeoutMs / 1000;
  if (master === null) {
    const stillOld = !isGone(old, await readProcess(system, old.pid));
    const what = stillOld ? `its master (pid ${old.pid}) did not come back from the reload` : `its master (pid ${old.pid}) died during the reload: the instance is down`;
    return fail(instance.name, `reload failed: ${what} within ${seconds} s${quoteOutput(await readLogSince(system, errorLog, logOffset))}`);
  }
  await recordMaster(ctx, instance, expected.binary, master);
  const readiness = await waitUntilPoolsAnswer(system, pools, deadline);
  if (readiness.failures.length > 0) {
    // A reload never takes an instance down: what still serves keeps serving, and the failure is reported.
    return fail(
      instance.name,
      `reload failed: ${describeNotReady(readiness, seconds, `though its new master (pid ${old.pid} → ${master.pid}) runs; it was left running`)}`,
    );
  }
  return succeed(instance.name, `reloaded (pid ${old.pid} → ${master.pid})${describeReady(readiness)}`);
}

/** SIGUSR1: php-fpm reopens its log files (after rotation). */
export async function reopenInstance(ctx: ControlContext, target: Target): Promise<Outcome> {
  const inspection = await inspectTarget(ctx.system, target);
  if (inspection.state !== 'running') return fail(target.name, `logs not reopened: not running (${inspection.state})`);
  const sent = await signalVerified(ctx.system, inspection.pid!, 'SIGUSR1', inspection.identity!);
  if (sent.outcome !== 'sent') return fail(target.name, `logs not reopened: ${sent.outcome === 'gone' ? 'its master exited' : sent.reason}`);
  return succeed(target.name, `log files reopened (pid ${inspection.pid})`);
}
