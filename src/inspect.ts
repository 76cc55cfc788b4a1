// What state an instance is in, from its pidfile, its record and /proc. Read-only: it never
// signals and never changes a file.
import { FpmMultiError } from './errors.js';
import type { UsableInstance } from './invocation.js';
import { readTrustedPidfile } from './pidfile.js';
import { readProcess, resolveBinary, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import type { InstanceRecord } from './record.js';
import { errnoCode, type System } from './system.js';

export type InstanceState = 'running' | 'stopped' | 'crashed' | 'stale' | 'orphan' | 'unknown';

/** Something to act on: a declared instance, the record of one the controller started, or both. */
export interface Target {
  name: string;
  /** False for the record of an instance removed from the declaration file (an orphan). */
  declared: boolean;
  /** Null when not declared, or declared with problems: then only its record can be acted on. */
  instance: UsableInstance | null;
  record: InstanceRecord | null;
}

export interface Inspection {
  state: InstanceState;
  /** The running master's pid, or the pid a pidfile or record names. */
  pid: number | null;
  /** The verified master when running (or orphan). */
  master: ProcessInfo | null;
  /** Who the master must be before any signal: pinned to its start time when running. */
  identity: ExpectedMaster | null;
  /** Why, in words, for anything but a plain running or stopped state. */
  detail: string;
}

export function pidfileOf(target: Target): string {
  return target.instance?.pidfile ?? target.record!.pidfile;
}

async function declaredIdentity(system: System, instance: UsableInstance): Promise<ExpectedMaster> {
  return { binary: await resolveBinary(system, instance.binary), config: instance.config };
}

function runningState(target: Target): InstanceState {
  return target.declared ? 'running' : 'orphan';
}

/** What an ordinary user cannot see of root's processes and files: said plainly, never "stopped". */
export const NEEDS_ROOT_DETAIL = 'the state cannot be determined without root (run as root)';

function needsRoot(pid: number | null, why: string): Inspection {
  return { state: 'unknown', pid, master: null, identity: null, detail: `${why}: ${NEEDS_ROOT_DETAIL}` };
}

/**
 * The record's master, when alive and still the very process we started, is authoritative: it
 * survives a deleted or corrupt pidfile, and a slot changed in the file while the old master
 * runs. Otherwise the pidfile decides, checked against the declaration.
 */
export async function inspectTarget(system: System, target: Target): Promise<Inspection> {
  const { record, instance } = target;
  if (record !== null) {
    const recorded: ExpectedMaster = { binary: record.binary, config: record.config, startTimeTicks: record.startTimeTicks };
    const proc = await readProcess(system, record.pid);
    if (proc !== null && verifyIdentity(proc, recorded).ok) {
      return { state: runningState(target), pid: proc.pid, master: proc, identity: recorded, detail: '' };
    }
    if (proc !== null && proc.exe === null && system.uid !== 0) {
      // An ordinary user cannot read root's /proc/PID/exe. The recorded pid with the recorded start
      // time and master title is still the very process root started and verified (a reused pid
      // has another start time): enough to report it, never to signal it.
      if (verifyIdentity({ ...proc, exe: record.binary, exeDeleted: false }, recorded).ok) {
        return { state: runningState(target), pid: proc.pid, master: proc, identity: recorded, detail: '' };
      }
      return needsRoot(proc.pid, `its recorded master (pid ${proc.pid}) runs as another user`);
    }
  }
  const pidfile = pidfileOf(target);
  let pid: number | null;
  try {
    pid = await readTrustedPidfile(system, pidfile);
  } catch (error) {
    if (errnoCode(error) === 'EACCES' && system.uid !== 0) return needsRoot(null, `pidfile ${pidfile}: permission denied (EACCES)`);
    if (!(error instanceof FpmMultiError)) throw error;
    return { state: 'unknown', pid: null, master: null, identity: null, detail: error.message };
  }
  const expected: ExpectedMaster = instance === null ? { binary: record!.binary, config: record!.config } : await declaredIdentity(system, instance);
  // The pidfile names the pid we recorded, whose start time did not match above: a reused pid.
  const pinned = record !== null && pid === record.pid ? { ...expected, startTimeTicks: record.startTimeTicks } : expected;
  if (pid === null) {
    if (record === null) return { state: 'stopped', pid: null, master: null, identity: expected, detail: '' };
    return { state: 'crashed', pid: record.pid, master: null, identity: expected, detail: `its master (pid ${record.pid}) is gone and ${pidfile} is missing` };
  }
  const proc = await readProcess(system, pid);
  if (proc === null) {
    return { state: 'crashed', pid, master: null, identity: expected, detail: `${pidfile} names pid ${pid}, which is not running` };
  }
  if (proc.exe === null && system.uid !== 0) return needsRoot(pid, `${pidfile} names pid ${pid}, which runs as another user`);
  const verdict = verifyIdentity(proc, pinned);
  if (!verdict.ok) {
    return { state: 'stale', pid, master: null, identity: expected, detail: `${pidfile} names a process that is not this instance: ${verdict.reason}` };
  }
  return { state: runningState(target), pid, master: proc, identity: { ...expected, startTimeTicks: proc.startTimeTicks }, detail: '' };
}

/**
 * A declared instance with problems and no record: without its binary or config nothing can be
 * verified, so only an absent pidfile tells: then it is stopped, else its state is unknown.
 */
export async function inspectUnusable(system: System, pidfile: string | null, unusable: string): Promise<Inspection> {
  const detail = `unusable: ${unusable}`;
  if (pidfile !== null) {
    try {
      await system.lstat(pidfile);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { state: 'stopped', pid: null, master: null, identity: null, detail };
    }
  }
  return { state: 'unknown', pid: null, master: null, identity: null, detail };
}
