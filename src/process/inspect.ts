// What state an instance is in, from its pidfile, its record and /proc. Read-only: it never
// signals and never changes a file.
import { describeErrno, FpmMultiError } from '../errors.js';
import type { UsableInstance } from '../model/invocation.js';
import { PidfileContentError, readTrustedPidfile } from './pidfile.js';
import { resolveAccount, uidOf } from './account.js';
import { listStats, readProcess, resolveExecutablePath, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import type { InstanceRecord, LaunchIntent } from './record.js';
import { unhandled, type Target } from './target.js';
import { errnoCode, type System } from './system.js';

export type InstanceState = 'running' | 'stopped' | 'crashed' | 'stale' | 'orphan' | 'unknown';

interface InspectionBase {
  /** The running master's pid, or the pid a pidfile or record names. */
  pid: number | null;
  /** Why, in words, for anything but a plain running or stopped state. */
  detail: string;
}

/** Our master runs (verified: binary, config, owner, start time). */
export interface RunningInspection extends InspectionBase {
  state: 'running' | 'orphan';
  pid: number;
  master: ProcessInfo;
  /** Who the master must be before any signal: pinned to its start time. */
  identity: ExpectedMaster;
  /**
   * False when the record does not name this master (no record, or its master was replaced by a
   * reload made outside the controller): the caller writes one (adoption).
   */
  recorded: boolean;
  /** What proves the master ours: its record, the launch intent of its interrupted start, or its pidfile in the run directory. */
  foundBy: 'record' | 'intent' | 'pidfile';
}

export interface StoppedInspection extends InspectionBase {
  state: 'stopped';
  master: null;
  identity: ExpectedMaster | null;
  /** A stop was in progress when its controller died, and the master is gone: clean up, not a crash. */
  interruptedStop: boolean;
  /**
   * A master of this binary, config and owner that a pidfile outside the run directory names,
   * though nothing proves this file started it: reported, never signalled nor adopted.
   */
  unowned?: ProcessInfo;
}

export interface CrashedInspection extends InspectionBase {
  state: 'crashed';
  pid: number;
  master: null;
  identity: ExpectedMaster | null;
}

export interface StaleInspection extends InspectionBase {
  state: 'stale';
  pid: number;
  master: null;
  identity: ExpectedMaster | null;
}

export interface UnknownInspection extends InspectionBase {
  state: 'unknown';
  /** The pid whose process an ordinary user cannot see; else null. */
  pid: number | null;
  master: null;
  identity: null;
  /** The pidfile exists, trusted, and is empty (php-fpm could not write it, e.g. ENOSPC). */
  emptyPidfile: boolean;
  /** Unknown because its record cannot be read, and no master of it was found through its pidfile. */
  unreadableRecord?: boolean;
  /** Unknown because an ordinary user may not see root's process or file. */
  needsRoot?: boolean;
  /**
   * With an unreadable record: the live master of this identity that a pidfile outside the run
   * directory names. The record may be its record: stop must neither signal it nor call the instance stopped.
   */
  unprovenMaster?: ProcessInfo;
}

export type Inspection = RunningInspection | StoppedInspection | CrashedInspection | StaleInspection | UnknownInspection;

/** Who a master of this declared instance must be: the resolved binary, the config, our uid (or its user='s). */
export async function declaredIdentity(system: System, instance: UsableInstance): Promise<ExpectedMaster> {
  const uid = uidOf(system, await resolveAccount(system, instance));
  return { binary: await resolveExecutablePath(system, instance.binary), config: instance.config, uid };
}

/**
 * Who the recorded master is: identity comes from the record (what was started), never from the
 * file as edited since. Old records without a uid: the reading controller's own.
 */
export function recordedIdentity(system: System, record: InstanceRecord): ExpectedMaster {
  return { binary: record.binary, config: record.config, uid: record.uid ?? system.uid };
}

/** What an ordinary user cannot see of root's processes and files: said plainly, never "stopped". */
export const NEEDS_ROOT_DETAIL = 'the state cannot be determined without root (run as root)';

function needsRoot(pid: number | null, why: string): UnknownInspection {
  return { state: 'unknown', pid, master: null, identity: null, detail: `${why}: ${NEEDS_ROOT_DETAIL}`, emptyPidfile: false, needsRoot: true };
}

function unreadableRecord(pid: number | null, detail: string): UnknownInspection {
  return { state: 'unknown', pid, master: null, identity: null, detail, emptyPidfile: false, unreadableRecord: true };
}

function stopped(identity: ExpectedMaster | null, detail = '', pid: number | null = null, interruptedStop = false): StoppedInspection {
  return { state: 'stopped', pid, master: null, identity, detail, interruptedStop };
}

/**
 * The record's master, when alive and still the very process we started, is authoritative: it
 * survives a deleted or corrupt pidfile, and a slot or binary changed in the file while the old
 * master runs. Otherwise the pidfile decides, checked against the record's identity when there is
 * one (a master that replaced the recorded one by a reload started after it), else against the
 * declaration. A master found by the pidfile alone is ours when the pidfile (trusted: root-owned,
 * in a root-only directory) names a verified master of this binary, config and owner: only this
 * instance's launch writes that path (a config's own `pid =` is refused before any start).
 */
export async function inspectTarget(system: System, target: Target): Promise<Inspection> {
  switch (target.kind) {
    case 'declared': {
      if (target.record !== null) {
        const successor = target.recordPidfileProves ?? (target.pidfileProves && target.record.pidfile === target.instance.pidfile);
        return inspectMaster(system, { record: target.record, instance: target.instance, successor }, 'running');
      }
      if (target.intent !== null) {
        const launched = await findLaunchedMaster(system, target.intent);
        if (launched !== null) return launchedInspection(target.intent, launched, 'running');
      }
      if (!target.pidfileProves) return inspectUnproven(system, target.instance, target.recordProblem);
      const found = await inspectMaster(system, { record: null, instance: target.instance, successor: false }, 'running');
      // A record that cannot be read may name a master the pidfile does not: unknown, not "stopped".
      if (target.recordProblem !== null && found.state !== 'running') return unreadableRecord(found.pid, target.recordProblem);
      return found;
    }
    case 'unusable':
      // Without its binary or config nothing but its record can be verified.
      if (target.record === null) return inspectUnusable(system, target.pidfile, target.reason, target.pidfileProves);
      return inspectMaster(system, { record: target.record, instance: null, successor: target.recordPidfileProves ?? target.pidfileProves }, 'running');
    case 'orphan':
      return inspectMaster(
        system, { record: target.record, instance: null, successor: target.recordPidfileProves ?? false }, target.why === 'file-unusable' ? 'running' : 'orphan',
      );
    case 'launched': {
      const launched = await findLaunchedMaster(system, target.intent);
      return launched === null ? stopped(null) : launchedInspection(target.intent, launched, target.why === 'file-unusable' ? 'running' : 'orphan');
    }
    default:
      return unhandled(target);
  }
}

/** The master an interrupted launch brought up, pinned to its start time: its identity is the intent's (what was launched). */
function launchedInspection(intent: LaunchIntent, master: ProcessInfo, runningAs: 'running' | 'orphan'): RunningInspection {
  const identity: ExpectedMaster = { binary: intent.binary, config: intent.config, uid: intent.uid, startTimeTicks: master.startTimeTicks };
  return { state: runningAs, pid: master.pid, master, identity, detail: '', recorded: false, foundBy: 'intent' };
}

/**
 * The master an interrupted launch brought up: its binary, config and owner, started inside the
 * launch's window; named by the intent's pidfile, else the only session leader of that identity
 * started in the window (the controller may have died before php-fpm wrote its pidfile). null
 * when none (or more than one) is found. A pidfile that cannot be believed is passed over.
 */
export async function findLaunchedMaster(system: System, intent: LaunchIntent): Promise<ProcessInfo | null> {
  const expected: ExpectedMaster = { binary: intent.binary, config: intent.config, uid: intent.uid, startedAfterTicks: intent.launchTicks };
  const inWindow = (proc: ProcessInfo | null): proc is ProcessInfo =>
    proc !== null && proc.startTimeTicks <= intent.deadlineTicks && verifyIdentity(proc, expected).ok;
  try {
    const pid = await readTrustedPidfile(system, intent.pidfile, intent.uid);
    const named = pid === null ? null : await readProcess(system, pid);
    if (inWindow(named)) return named;
  } catch (error) {
    if (!(error instanceof FpmMultiError) && errnoCode(error) === undefined) throw error;
  }
  const leaders = (await listStats(system)).filter(
    (stat) => stat.pid === stat.sessionId && stat.startTimeTicks >= intent.launchTicks && stat.startTimeTicks <= intent.deadlineTicks,
  );
  const launched = (await Promise.all(leaders.map((stat) => readProcess(system, stat.pid)))).filter(inWindow);
  const [only] = launched;
  return launched.length === 1 && only !== undefined ? only : null;
}

/**
 * Without a record, a pidfile outside the run directory proves nothing (a second service's file
 * or a php-fpm started by hand may name the same path): a verified master it names is reported
 * as `unowned`, and whatever else it holds decides nothing, except that a state an ordinary user
 * cannot see stays unknown. Never a failure for the pidfile: stop must succeed for what this file
 * never started, whatever its pidfile's directory looks like (Debian's /run/php).
 */
async function inspectUnproven(system: System, instance: UsableInstance, recordProblem: string | null): Promise<Inspection> {
  const expected = await declaredIdentity(system, instance);
  let seen: Inspection;
  try {
    seen = await inspectMaster(system, { record: null, instance, successor: false }, 'running');
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    if (recordProblem !== null) return unreadableRecord(null, recordProblem);
    return stopped(expected, `pidfile ${instance.pidfile}: ${describeErrno(error)}`);
  }
  if (recordProblem !== null) {
    // The unreadable record may name the master this pidfile (outside the run directory) names:
    // nothing proves it ours, nothing proves it not. Unknown, with that master named, never "stopped".
    if (seen.state !== 'running' && seen.state !== 'orphan') return unreadableRecord(null, recordProblem);
    return {
      ...unreadableRecord(seen.pid, `${recordProblem}; and ${instance.pidfile} names a live php-fpm master of ${instance.config} (pid ${seen.pid}) that it may name`),
      unprovenMaster: seen.master,
    };
  }
  switch (seen.state) {
    case 'running':
    case 'orphan':
      return { ...stopped(expected), unowned: seen.master };
    case 'unknown':
      return seen.needsRoot === true ? seen : stopped(expected, seen.detail);
    case 'stopped':
    case 'crashed':
    case 'stale':
      return stopped(expected);
    default:
      return unhandled(seen);
  }
}

/**
 * What a master is looked for by: its record (what was started), else the declared instance.
 * `successor`: whether a master started after the recorded one that the pidfile names is taken
 * for its successor (a reload made outside the controller). Only a pidfile in this file's own run
 * directory proves that (tryout 2 finding 2): another service's launch, or a php-fpm started by
 * hand, may write a pidfile elsewhere once the recorded master died.
 */
type Known = { record: InstanceRecord; instance: UsableInstance | null; successor: boolean } | { record: null; instance: UsableInstance; successor: false };

/** The pidfile that inspectTarget reads: the recorded master's (the file may name another since). */
function inspectedPidfileOf(known: Known): string {
  return known.record !== null ? known.record.pidfile : known.instance.pidfile;
}

async function inspectMaster(system: System, known: Known, runningAs: 'running' | 'orphan'): Promise<Inspection> {
  const { record } = known;
  if (record !== null) {
    const recorded: ExpectedMaster = { ...recordedIdentity(system, record), startTimeTicks: record.startTimeTicks };
    const proc = await readProcess(system, record.pid);
    if (proc !== null && verifyIdentity(proc, recorded).ok) {
      return { state: runningAs, pid: proc.pid, master: proc, identity: recorded, detail: '', recorded: true, foundBy: 'record' };
    }
    if (proc !== null && proc.exe === null && system.uid !== 0) {
      // An ordinary user cannot read root's /proc/PID/exe. The recorded pid with the recorded start
      // time and master title is still the very process root started and verified (a reused pid
      // has another start time): enough to report it, never to signal it.
      if (verifyIdentity({ ...proc, exe: record.binary, exeDeleted: false }, recorded).ok) {
        return { state: runningAs, pid: proc.pid, master: proc, identity: recorded, detail: '', recorded: true, foundBy: 'record' };
      }
      return needsRoot(proc.pid, `its recorded master (pid ${proc.pid}) runs as another user`);
    }
  }
  const pidfile = inspectedPidfileOf(known);
  const expected: ExpectedMaster = known.record !== null ? recordedIdentity(system, known.record) : await declaredIdentity(system, known.instance);
  let pid: number | null;
  try {
    // The owner the master must have may write its pidfile (user=): a claim, verified below.
    pid = await readTrustedPidfile(system, pidfile, expected.uid);
  } catch (error) {
    if (errnoCode(error) === 'EACCES' && system.uid !== 0) return needsRoot(null, `pidfile ${pidfile}: permission denied (EACCES)`);
    if (!(error instanceof FpmMultiError)) throw error;
    const emptyPidfile = error instanceof PidfileContentError && error.content === '';
    return { state: 'unknown', pid: null, master: null, identity: null, detail: error.message, emptyPidfile };
  }
  // A record marked `stopping`: its stop was interrupted, and what is found now is its end.
  const stopping = record?.stopping === true ? record : null;
  const stopNote = (stopped: InstanceRecord, what: string): string => `a stop of its master (pid ${stopped.pid}) was interrupted, and ${what}`;
  if (pid === null) {
    if (record === null) return stopped(expected);
    if (stopping !== null) return stopped(expected, stopNote(stopping, 'it is gone'), record.pid, true);
    return { state: 'crashed', pid: record.pid, master: null, identity: expected, detail: `its master (pid ${record.pid}) is gone and ${pidfile} is missing` };
  }
  const proc = await readProcess(system, pid);
  if (proc === null) {
    if (stopping !== null) return stopped(expected, stopNote(stopping, `${pidfile} names pid ${pid}, which is not running`), pid, true);
    return { state: 'crashed', pid, master: null, identity: expected, detail: `${pidfile} names pid ${pid}, which is not running` };
  }
  if (proc.exe === null && system.uid !== 0) return needsRoot(pid, `${pidfile} names pid ${pid}, which runs as another user`);
  // The pidfile names the pid we recorded, whose start time did not match above: a reused pid.
  // Any other pid must be a master started after the recorded one (its successor by a reload).
  const candidate: ExpectedMaster = record === null
    ? expected
    : pid === record.pid ? { ...expected, startTimeTicks: record.startTimeTicks } : { ...expected, startedAfterTicks: record.startTimeTicks };
  const verdict = verifyIdentity(proc, candidate);
  if (record !== null && pid !== record.pid && !known.successor && verdict.ok) {
    // A master of this identity that the recorded one's pidfile names, outside the run directory:
    // not proven its successor (another service or a hand may have started it): never taken.
    const unproven = `${pidfile} now names pid ${pid}, a php-fpm master of ${record.config} that php-fpm-multi cannot prove this file started (the pidfile is outside its run directory); it is left alone`;
    if (stopping !== null) return stopped(expected, stopNote(stopping, `it is gone; ${unproven}`), record.pid, true);
    return { state: 'crashed', pid: record.pid, master: null, identity: expected, detail: `its master (pid ${record.pid}) is gone; ${unproven}` };
  }
  if (!verdict.ok) {
    if (stopping !== null) return stopped(expected, stopNote(stopping, `${pidfile} names a process that is not this instance: ${verdict.reason}`), pid, true);
    return { state: 'stale', pid, master: null, identity: expected, detail: `${pidfile} names a process that is not this instance: ${verdict.reason}` };
  }
  return {
    state: runningAs, pid, master: proc, identity: { ...expected, startTimeTicks: proc.startTimeTicks }, detail: '', recorded: false,
    foundBy: record === null ? 'pidfile' : 'record',
  };
}

/**
 * A declared instance with problems and no record: without its binary or config nothing can be
 * verified, so only an absent pidfile tells: then it is stopped, else its state is unknown. A
 * pidfile outside the run directory (`proves` false) proves nothing this file started: stopped.
 */
export async function inspectUnusable(system: System, pidfile: string | null, unusable: string, proves = true): Promise<Inspection> {
  const detail = `unusable: ${unusable}`;
  if (!proves) return stopped(null, detail);
  if (pidfile !== null) {
    try {
      await system.lstat(pidfile);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return stopped(null, detail);
    }
  }
  return { state: 'unknown', pid: null, master: null, identity: null, detail, emptyPidfile: false };
}
