// How a php-fpm process tree ends: the master by QUIT, then TERM, then KILL, its workers only on
// escalation, and the workers a SIGKILLed master left behind. Every signal goes through
// signalVerified; only processes verified to be the instance's are ever signalled.
import { FpmMultiError } from '../errors.js';
import { readTrustedPidfile, PidfileContentError } from './pidfile.js';
import {
  listStats, readLiveStat, readProcess, verifyIdentity, type ExpectedMaster, type ExpectedWorker, type ProcessInfo, type ProcStat,
} from './proc.js';
import { signalVerified, type FpmSignal } from './signal.js';
import { errnoCode, type System } from './system.js';

/** How often a waiting operation looks at /proc again: fine enough that stop returns promptly. */
export const POLL_INTERVAL_MS = 10;

/** After SIGTERM (workers are killed mid-request), how long before SIGKILL. */
export const TERM_GRACE_MS = 5_000;

/** After SIGKILL, how long the kernel may take to tear the processes down. */
export const KILL_WAIT_MS = 5_000;

/**
 * The process table of one command, read on first use and then shared by all its instances.
 * Workers forked later are caught by the fresh scan of an escalation (stopMaster).
 */
export class ProcessTable {
  #stats: Promise<ProcStat[]> | undefined;
  #leaders: Promise<ProcessInfo[]> | undefined;

  constructor(private readonly system: System) {}

  stats(): Promise<ProcStat[]> {
    this.#stats ??= listStats(this.system);
    return this.#stats;
  }

  /** Session leaders with their identity: only they can be daemonized php-fpm masters. */
  leaders(): Promise<ProcessInfo[]> {
    this.#leaders ??= this.stats().then((table) => readLeaders(this.system, table));
    return this.#leaders;
  }
}

async function readLeaders(system: System, table: readonly ProcStat[]): Promise<ProcessInfo[]> {
  // A daemonized php-fpm master leads its own session: only session leaders can be masters.
  const leaders = await Promise.all(table.filter((stat) => stat.pid === stat.sessionId).map((stat) => readProcess(system, stat.pid)));
  return leaders.filter((proc): proc is ProcessInfo => proc !== null);
}

export function isGone(proc: ProcessInfo, current: { startTimeTicks: number } | null): boolean {
  return current === null || current.startTimeTicks !== proc.startTimeTicks;
}

/** Waits until every process is gone (exited, a zombie, or its pid reused), or the deadline. */
export async function waitUntilGone(system: System, processes: readonly ProcessInfo[], timeoutMs: number): Promise<ProcessInfo[]> {
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
export async function endOrphanWorkers(
  system: System, processes: ProcessTable, binary: string, masterPid: number, masterStartTicks: number | undefined,
): Promise<number> {
  if ((await readLiveStat(system, masterPid)) !== null) return 0;
  const workers = await findWorkers(system, await processes.stats(), binary, masterPid, masterStartTicks);
  if (workers.length === 0) return 0;
  await signalWorkers(system, workers, 'SIGTERM', binary);
  const left = await waitUntilGone(system, workers, TERM_GRACE_MS);
  await signalWorkers(system, left, 'SIGKILL', binary);
  const stuck = await waitUntilGone(system, left, KILL_WAIT_MS);
  if (stuck.length > 0) throw new FpmMultiError(`orphaned php-fpm workers ${stuck.map((p) => p.pid).join(', ')} did not exit after SIGKILL`);
  return workers.length;
}

/** Removes the pidfile only while it still names `pid`: a new master may have written its own. */
export async function removePidfileOf(system: System, pidfile: string, pid: number | null, writer?: number): Promise<void> {
  try {
    if ((await readTrustedPidfile(system, pidfile, writer)) !== pid) return;
    await system.unlink(pidfile);
  } catch (error) {
    if (error instanceof PidfileContentError && pid === null) {
      await system.unlink(pidfile);
      return;
    }
    if (errnoCode(error) !== 'ENOENT' && !(error instanceof FpmMultiError)) throw error;
  }
}

/**
 * QUIT, then TERM after stop_timeout, then KILL: returns the signal that ended it, or throws.
 * A graceful master exits only after its workers, so waiting on those in `table` suffices; an
 * escalation scans /proc afresh, so that workers forked since (ondemand, dynamic) are reached.
 */
export async function stopMaster(
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

export function describeEscalation(signal: FpmSignal, stopTimeoutMs: number): string {
  if (signal === 'SIGQUIT') return '';
  return signal === 'SIGTERM'
    ? ` after SIGTERM: it ignored SIGQUIT for ${stopTimeoutMs / 1000} s`
    : ` after SIGKILL: it ignored SIGQUIT and SIGTERM`;
}

/**
 * Stops what a failed launch left running, and only that: masters of this binary, config and
 * owner that lead their own session, started after the launch began (`launched.startedAfterTicks`)
 * and were not running before it (`before`). A master somebody else runs is never among them.
 */
export async function stopMastersOfLaunch(system: System, launched: ExpectedMaster, before: ReadonlySet<number>, stopTimeoutMs: number): Promise<number> {
  const table = await listStats(system); // fresh: the master was launched after any shared table
  const masters = (await readLeaders(system, table)).filter((proc) => !before.has(proc.pid) && verifyIdentity(proc, launched).ok);
  for (const master of masters) await stopMaster(system, table, master, { ...launched, startTimeTicks: master.startTimeTicks }, stopTimeoutMs);
  return masters.length;
}
