// The one place in php-fpm-multi that sends signals. Every signal goes to exactly one pid that
// was just verified, from /proc, to be the expected php-fpm process.
//
// Remaining race: between reading /proc (readProcess) and kill(2), the verified process may exit,
// be reaped, and its pid be handed to a new process, which would then get our signal. Linux hands
// out pids in increasing order and wraps at pid_max (32768 at least, 4194304 on most systemd
// hosts), so a reuse within that window needs the whole pid space to be cycled through in the
// microseconds between two syscalls — and php-fpm masters only exit when we ask them to. If the
// process merely exits (a zombie, or gone), kill succeeds harmlessly or reports ESRCH. Closing
// the race entirely needs pidfd_open + pidfd_send_signal (Linux 5.3), which Node does not expose.

import { FpmMultiError } from '../errors.js';
import { PID_MAX_LIMIT } from './pidfile.js';
import { readProcess, verifyIdentity, type ExpectedIdentity, type ProcessInfo } from './proc.js';
import type { System } from './system.js';

/** The signals php-fpm understands (QUIT graceful stop, TERM fast stop, USR1 reopen logs, USR2 reload) and KILL. */
export type FpmSignal = 'SIGQUIT' | 'SIGTERM' | 'SIGKILL' | 'SIGUSR1' | 'SIGUSR2';

export type SignalResult =
  /** The signal was delivered to the verified process. */
  | { outcome: 'sent'; process: ProcessInfo }
  /** No such process (or a zombie): nothing to signal. */
  | { outcome: 'gone' }
  /** A process with that pid exists but is not the expected one: it was NOT signalled. */
  | { outcome: 'mismatch'; reason: string; process: ProcessInfo };

/** A pid that must never be signalled whatever /proc says: a bug or a forged pidfile upstream. */
export class SignalRefusedError extends FpmMultiError {
  readonly pid: number;

  constructor(pid: number, signal: FpmSignal, why: string) {
    super(`refusing to send ${signal} to pid ${pid}: ${why}. This is a bug or a forged pidfile; nothing was signalled.`);
    this.pid = pid;
  }
}

/** The kernel refused the signal: the controller lacks the privilege. */
export class SignalNotPermittedError extends FpmMultiError {
  constructor(pid: number, signal: FpmSignal) {
    super(`not permitted to send ${signal} to pid ${pid}: run php-fpm-multi as root (or as the user running that php-fpm).`);
  }
}

/**
 * Sends `signal` to `pid` only if, immediately before, /proc shows it is the `expected` process.
 * Throws SignalRefusedError for pids that can never be right: not an integer, ≤ 1 (0 and negative
 * pids address process groups, 1 is init), above PID_MAX_LIMIT, the controller itself, or the
 * leader of the controller's process group (our shell or init script). A process inside our
 * own process group is a mismatch: a daemonized php-fpm always leads its own session.
 */
export async function signalVerified(
  system: System,
  pid: number,
  signal: FpmSignal,
  expected: ExpectedIdentity,
): Promise<SignalResult> {
  if (!Number.isInteger(pid)) throw new SignalRefusedError(pid, signal, 'not an integer');
  if (pid <= 1) throw new SignalRefusedError(pid, signal, '0, 1 and negative pids address init or whole process groups');
  if (pid > PID_MAX_LIMIT) throw new SignalRefusedError(pid, signal, `above the kernel's limit ${PID_MAX_LIMIT}`);
  if (pid === system.pid) throw new SignalRefusedError(pid, signal, 'it is php-fpm-multi itself');
  if (pid === system.processGroupId) {
    throw new SignalRefusedError(pid, signal, "it leads php-fpm-multi's own process group (the shell or script that ran it)");
  }

  const process = await readProcess(system, pid);
  if (process === null) return { outcome: 'gone' };
  if (process.processGroupId === system.processGroupId) {
    return {
      outcome: 'mismatch',
      reason: `pid ${pid} is in php-fpm-multi's own process group ${system.processGroupId}, so it is not a daemonized php-fpm`,
      process,
    };
  }
  const verdict = verifyIdentity(process, expected);
  if (!verdict.ok) return { outcome: 'mismatch', reason: verdict.reason, process };

  const result = system.kill(pid, signal);
  if (result === 'ESRCH') return { outcome: 'gone' };
  if (result === 'EPERM') throw new SignalNotPermittedError(pid, signal);
  return { outcome: 'sent', process };
}
