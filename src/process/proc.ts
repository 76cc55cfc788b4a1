// Processes as /proc shows them, and the identity check that decides whether a pid is the
// master (or a worker) of one php-fpm instance.
//
// What a real php-fpm 8.2 master looks like (Debian 12, observed; see test/proc.test.ts):
// - /proc/PID/exe -> /usr/sbin/php-fpm8.2; "/usr/sbin/php-fpm8.2 (deleted)" once a package upgrade
//   has replaced the binary while the old master runs on.
// - /proc/PID/cmdline: php-fpm overwrites its argv area with the title, padded with NULs to the
//   original length: "php-fpm: master process (/tmp/x/fpm.conf)\0\0\0…", i.e. ONE string. The config
//   path is printed exactly as given on the command line (a relative path stays relative).
// - Workers: "php-fpm: pool www\0\0…", ppid = master, same process group and session as the master.
// - After -D the master is a session leader: pid = pgid = sid, ppid 1. Workers outlive a SIGKILLed
//   master (ppid becomes 1, sid still the dead master's pid) and keep the listen socket, so a new
//   start fails until they are gone; the pidfile stays behind too.
// - The -D launcher exits only when the master is ready: 0 = running, pidfile already written
//   (the bare pid, no newline); 78 = config unreadable or invalid (nothing forked); 70 = failed
//   after forking (socket in use, pidfile not creatable), no pidfile. Debian's build daemonizes by
//   default even without -D (daemonize = yes).
// - Reload (USR2) re-execs with the same argv, so under -D the master daemonizes again: a NEW pid
//   (new start time) replaces the old one in the pidfile. With -F the pid stays.

import { FpmMultiError } from '../errors.js';
import { errnoCode, type System } from './system.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** One letter of /proc/PID/stat: R running, S sleeping, D disk wait, T stopped, … (never Z or X here). */
  state: string;
  sessionId: number;
  processGroupId: number;
  /** Start time in clock ticks after boot: with the pid, it names a process across pid reuse. */
  startTimeTicks: number;
  /** The kernel's short name (/proc/PID/comm, at most 15 bytes). */
  comm: string;
  /** Target of /proc/PID/exe without the " (deleted)" suffix; null when unreadable (kernel thread, no permission). */
  exe: string | null;
  /** The executable file was deleted or replaced since the process started it. */
  exeDeleted: boolean;
  cmdline: string[];
  /** Real and effective uid (/proc/PID/status `Uid:`): a master we started as U runs as U. */
  uid: number;
  effectiveUid: number;
}

/** What /proc/PID/stat says, before the other files are read. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  processGroupId: number;
  sessionId: number;
  startTimeTicks: number;
}

/**
 * USER_HZ, the unit of /proc's tick counts. It is part of the kernel's user-space ABI and is 100
 * on every architecture Linux still supports except Alpha (1024), independently of the kernel's
 * internal HZ; `getconf CLK_TCK` prints it (100 on this machine). Node has no sysconf binding.
 */
export const CLOCK_TICKS_PER_SECOND = 100;
/** The suffix the kernel appends to /proc/PID/exe when the file is gone from its path. */
const DELETED_SUFFIX = ' (deleted)';
/** Processes read at once by listStats: bounded, so a large /proc does not open thousands of files at once. */
const LIST_CONCURRENCY = 32;
/** A pid reused while we read its files again and again means something is very busy; give up. */
const READ_ATTEMPTS = 3;

/**
 * A process in the middle of exiting (state X, or Z while its parent reaps it) reports -1 for its
 * process group and session: valid, and such a process counts as gone anyway.
 */
const MIN_STAT_ID = -1;

/** /proc gave us something we cannot parse: the kernel format changed or /proc is not procfs. */
export class ProcFormatError extends FpmMultiError {
  constructor(path: string, content: string, what: string) {
    super(`cannot parse ${path}: ${what} in ${JSON.stringify(content.slice(0, 200))}. Is /proc a Linux procfs?`);
  }
}

/**
 * Parses /proc/PID/stat. The second field is the command name in parentheses and may itself
 * contain spaces and ")" (a process may call itself "a) b"), so the fields after it start after
 * the LAST ")".
 */
export function parseStat(content: string, path = '/proc/PID/stat'): ProcStat {
  const open = content.indexOf(' (');
  const close = content.lastIndexOf(')');
  if (open < 1 || close < open) throw new ProcFormatError(path, content, 'no "(comm)" field');
  const pid = Number(content.slice(0, open));
  const comm = content.slice(open + 2, close);
  // Fields 3 onwards (1-based as in proc(5)): state ppid pgrp session tty_nr tpgid flags minflt
  // cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime.
  const fields = content.slice(close + 2).trimEnd().split(' ');
  const state = fields[0] ?? '';
  const numbers = [fields[1], fields[2], fields[3], fields[19]].map((f) => Number(f));
  const [ppid, processGroupId, sessionId, startTimeTicks] = numbers;
  if (
    !Number.isInteger(pid) ||
    pid <= 0 ||
    !/^[A-Za-z]$/.test(state) ||
    ppid === undefined ||
    processGroupId === undefined ||
    sessionId === undefined ||
    startTimeTicks === undefined ||
    !numbers.every((n) => Number.isSafeInteger(n) && n >= MIN_STAT_ID) ||
    ppid < 0 ||
    startTimeTicks < 0
  ) {
    throw new ProcFormatError(path, content, 'unexpected fields');
  }
  return { pid, comm, state, ppid, processGroupId, sessionId, startTimeTicks };
}

/**
 * Splits /proc/PID/cmdline into arguments. Trailing NULs are dropped: a process that rewrote its
 * title (php-fpm, node's process.title) leaves the rest of its old argv area as NUL padding, so
 * its title comes back as one string. (An argv that really ends with empty strings loses them.)
 */
export function parseCmdline(content: string): string[] {
  const trimmed = content.replace(/\0+$/, '');
  return trimmed === '' ? [] : trimmed.split('\0');
}

/** Splits the kernel's " (deleted)" marker off a /proc/PID/exe target. */
export function parseExeLink(target: string): { path: string; deleted: boolean } {
  return target.endsWith(DELETED_SUFFIX)
    ? { path: target.slice(0, -DELETED_SUFFIX.length), deleted: true }
    : { path: target, deleted: false };
}

function vanished(error: unknown): boolean {
  // ENOENT: the /proc/PID directory is gone. ESRCH: the process died while we read a file of it.
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ESRCH';
}

/** Real and effective uid from /proc/PID/status (`Uid:\treal\teffective\tsaved\tfs`). */
export function parseStatusUids(content: string, path = '/proc/PID/status'): { uid: number; effectiveUid: number } {
  const match = /^Uid:\s+(\d+)\s+(\d+)\s/m.exec(content);
  const uid = Number(match?.[1]);
  const effectiveUid = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(uid) || !Number.isSafeInteger(effectiveUid)) throw new ProcFormatError(path, content, 'no Uid: line');
  return { uid, effectiveUid };
}

/** The stat of a live process (not a zombie), or null: one read, what polling loops need. */
export async function readLiveStat(system: System, pid: number): Promise<ProcStat | null> {
  const path = `/proc/${pid}/stat`;
  let content: string;
  try {
    content = await system.readFile(path);
  } catch (error) {
    if (vanished(error)) return null;
    throw error;
  }
  const stat = parseStat(content, path);
  // A zombie (Z) has exited and waits for its parent to reap it; kill(pid, 0) still succeeds but
  // nothing runs: for us it is gone. X (dead) is only seen in the instant of reaping.
  return stat.state === 'Z' || stat.state === 'X' ? null : stat;
}

/**
 * The process `pid` as /proc shows it, or null when it does not exist or is a zombie. The stat
 * file is read again last: if the process died (or the pid was reused) while its files were
 * read, the result would mix two processes, so we retry.
 */
export async function readProcess(system: System, pid: number): Promise<ProcessInfo | null> {
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt += 1) {
    const stat = await readLiveStat(system, pid);
    if (stat === null) return null;
    let cmdline: string;
    try {
      cmdline = await system.readFile(`/proc/${pid}/cmdline`);
    } catch (error) {
      if (vanished(error)) return null;
      throw error;
    }
    let uids: { uid: number; effectiveUid: number };
    try {
      uids = parseStatusUids(await system.readFile(`/proc/${pid}/status`), `/proc/${pid}/status`);
    } catch (error) {
      if (vanished(error)) return null;
      throw error;
    }
    let exe: string | null = null;
    let exeDeleted = false;
    try {
      const link = parseExeLink(await system.readlink(`/proc/${pid}/exe`));
      exe = link.path;
      exeDeleted = link.deleted;
    } catch (error) {
      // ENOENT also for kernel threads (no executable); EACCES for others' processes when not root.
      const code = errnoCode(error);
      if (code !== 'ENOENT' && code !== 'ESRCH' && code !== 'EACCES' && code !== 'EPERM') throw error;
    }
    const after = await readLiveStat(system, pid);
    if (after === null) return null;
    if (after.startTimeTicks !== stat.startTimeTicks) continue; // pid reused meanwhile
    return {
      pid,
      ppid: after.ppid,
      state: after.state,
      sessionId: after.sessionId,
      processGroupId: after.processGroupId,
      startTimeTicks: after.startTimeTicks,
      comm: after.comm,
      exe,
      exeDeleted,
      cmdline: parseCmdline(cmdline),
      ...uids,
    };
  }
  throw new FpmMultiError(`pid ${pid} was reused ${READ_ATTEMPTS} times while reading /proc/${pid}; try again.`);
}

/**
 * Every live process's stat, one read each: the process table a command shares to find workers
 * and sessions, reading the full identity (cmdline, exe) only of the few processes that match.
 */
export async function listStats(system: System): Promise<ProcStat[]> {
  const pids = (await system.readdir('/proc')).filter((name) => /^[1-9][0-9]*$/.test(name)).map(Number);
  const result: ProcStat[] = [];
  for (let i = 0; i < pids.length; i += LIST_CONCURRENCY) {
    const batch = await Promise.all(pids.slice(i, i + LIST_CONCURRENCY).map((pid) => readLiveStat(system, pid)));
    for (const stat of batch) if (stat !== null) result.push(stat);
  }
  return result;
}

/** The `btime` line of /proc/stat: boot time in seconds since the epoch. */
export function parseBootTime(procStat: string): number {
  const match = /^btime (\d+)$/m.exec(procStat);
  const seconds = Number(match?.[1]);
  if (match === null || !Number.isSafeInteger(seconds)) throw new ProcFormatError('/proc/stat', procStat, 'no btime line');
  return seconds;
}

export async function readBootTimeSeconds(system: System): Promise<number> {
  return parseBootTime(await system.readFile('/proc/stat'));
}

/**
 * Now, in the clock ticks of /proc/PID/stat's start time (both count from boot, suspend
 * included): a process that starts after this call has a start time at or above the result.
 * /proc/uptime has centisecond resolution, so it is rounded down to stay a lower bound.
 */
export async function readUptimeTicks(system: System): Promise<number> {
  const content = await system.readFile('/proc/uptime');
  const seconds = Number(content.split(' ')[0]);
  if (!Number.isFinite(seconds) || seconds < 0) throw new ProcFormatError('/proc/uptime', content, 'no uptime');
  return Math.floor(seconds * CLOCK_TICKS_PER_SECOND);
}

/**
 * When a process started, in ms since the epoch. For display and age only: btime is whole
 * seconds and the kernel derives it from the wall clock, which NTP may step, so it can differ by
 * a second between reads. Identity compares raw startTimeTicks, never this.
 */
export function startTimeEpochMs(startTimeTicks: number, bootTimeSeconds: number): number {
  return bootTimeSeconds * 1000 + Math.round((startTimeTicks * 1000) / CLOCK_TICKS_PER_SECOND);
}

/** How long a process has been running, in ms, by the wall clock `nowMs`. */
export function processAgeMs(startTimeTicks: number, bootTimeSeconds: number, nowMs: number): number {
  return Math.max(0, nowMs - startTimeEpochMs(startTimeTicks, bootTimeSeconds));
}

/** The title a php-fpm master started with `--fpm-config config` gives itself. */
export function masterTitle(config: string): string {
  return `php-fpm: master process (${config})`;
}

/** Worker titles: `php-fpm: pool NAME`. */
export const WORKER_TITLE_PREFIX = 'php-fpm: pool ';

export interface ExpectedMaster {
  role?: 'master';
  /** The instance's binary, resolved with resolveExecutablePath (the kernel reports exe as a real path). */
  binary: string;
  /** The config path exactly as passed to --fpm-config: php-fpm puts that string in its title. */
  config: string;
  /** When known (recorded at start): the master must be that very process, not a pid reuse. */
  startTimeTicks?: number;
  /**
   * A master found by a pidfile or a scan rather than by its recorded pid must have started at or
   * after this tick: after our launch began, or after the recorded master it replaced (a reload).
   */
  startedAfterTicks?: number;
  /** The owner: real and effective uid of the master (the uid of the controller that started it). */
  uid?: number;
}

export interface ExpectedWorker {
  role: 'worker';
  binary: string;
  /** The master's pid: a daemonized master leads its own session, and its workers belong to it. */
  sessionId: number;
  /** The (verified or recorded) master's start time: a worker never started before its master. */
  startedAfterTicks?: number;
}

export type ExpectedIdentity = ExpectedMaster | ExpectedWorker;

export type IdentityVerdict = { ok: true } | { ok: false; reason: string };

function describe(proc: ProcessInfo): string {
  return `pid ${proc.pid} (${JSON.stringify(proc.cmdline.join(' ') || `[${proc.comm}]`)})`;
}

/**
 * Is `proc` the expected php-fpm process? Pure. Checks, in order:
 * - its executable is the instance's binary (the same path with " (deleted)" counts: php-fpm
 *   keeps running after an upgrade replaced its binary);
 * - its command line is exactly the master title for this config path (one string), or for a
 *   worker a pool title and the master's session;
 * - for a master, its owner (real and effective uid) when expected;
 * - for a master with a recorded start time, that start time (guards against pid reuse); for
 *   anything found otherwise, a start at or after `startedAfterTicks`.
 * A title php-fpm had to truncate (no room in its argv area) fails the check: safe, never a
 * false match.
 */
export function verifyIdentity(proc: ProcessInfo, expected: ExpectedIdentity): IdentityVerdict {
  if (proc.exe === null) return { ok: false, reason: `${describe(proc)}: its executable cannot be read from /proc/${proc.pid}/exe` };
  if (proc.exe !== expected.binary) {
    return {
      ok: false,
      reason: `${describe(proc)} runs ${proc.exe}${proc.exeDeleted ? DELETED_SUFFIX : ''}, not ${expected.binary}`,
    };
  }
  if (expected.startedAfterTicks !== undefined && proc.startTimeTicks < expected.startedAfterTicks) {
    return { ok: false, reason: `${describe(proc)} started at tick ${proc.startTimeTicks}, before tick ${expected.startedAfterTicks}: it is older than what it would have to belong to` };
  }
  if (expected.role === 'worker') {
    const title = proc.cmdline[0];
    if (proc.cmdline.length !== 1 || title === undefined || !title.startsWith(WORKER_TITLE_PREFIX)) {
      return { ok: false, reason: `${describe(proc)} is not a php-fpm worker (title "${WORKER_TITLE_PREFIX}NAME")` };
    }
    if (proc.sessionId !== expected.sessionId || proc.pid === proc.sessionId) {
      return { ok: false, reason: `${describe(proc)} belongs to session ${proc.sessionId}, not to the master's session ${expected.sessionId}` };
    }
    return { ok: true };
  }
  const title = masterTitle(expected.config);
  if (proc.cmdline.length !== 1 || proc.cmdline[0] !== title) {
    return { ok: false, reason: `${describe(proc)} is not ${JSON.stringify(title)}` };
  }
  if (expected.uid !== undefined && (proc.uid !== expected.uid || proc.effectiveUid !== expected.uid)) {
    return { ok: false, reason: `${describe(proc)} runs as uid ${proc.uid} (effective ${proc.effectiveUid}), not ${expected.uid}: not a master php-fpm-multi started` };
  }
  if (expected.startTimeTicks !== undefined && proc.startTimeTicks !== expected.startTimeTicks) {
    return {
      ok: false,
      reason: `${describe(proc)} started at tick ${proc.startTimeTicks}, not ${expected.startTimeTicks}: the recorded master is gone and its pid was reused`,
    };
  }
  return { ok: true };
}

/**
 * The path /proc/PID/exe will show for processes run from `binary`: its real path (symlinks such
 * as /usr/sbin/php-fpm -> /etc/alternatives/… resolved). If the file is missing (deleted by an
 * upgrade in progress), the path as given: a master started from it shows it with " (deleted)".
 * A script (#!) runs as its interpreter, so its exe is the interpreter, never the script.
 */
export async function resolveExecutablePath(system: System, binary: string): Promise<string> {
  try {
    return await system.realpath(binary);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return binary;
    throw error;
  }
}
