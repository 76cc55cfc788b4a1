// What the supervisor tells an admin: one line per event on stderr, with an ISO timestamp (what
// supervise-daemon, s6 or systemd capture), and the same line to syslog through logger(1) when it
// is installed (tag php-fpm-multi). Syslog is best effort: a missing logger or a syslog daemon
// that is not running never stops supervision.
import { existsSync } from 'node:fs';
import type { Io } from '../cli/command.js';
import type { System } from '../process/system.js';

export const LOGGER_PROGRAM = '/usr/bin/logger';
export const SYSLOG_TAG = 'php-fpm-multi';
/** logger(1) is quick; a hung one is killed rather than kept. */
const LOGGER_TIMEOUT_MS = 5_000;

export type EventKind =
  | 'supervising' | 'adopted' | 'started' | 'crashed' | 'restarted' | 'backoff' | 'failed' | 'held' | 'resumed'
  | 'followed' | 'health' | 'health-restart' | 'reread' | 'stopped' | 'start-failed' | 'needs-restart' | 'warning';

/** Events that mean something is wrong go to syslog as daemon.err, the others as daemon.notice. */
const ERROR_KINDS: ReadonlySet<EventKind> = new Set(['crashed', 'failed', 'health-restart', 'start-failed', 'warning']);

export interface EventLog {
  /** One line: `<ISO time> php-fpm-multi[<pid>]: <instance>: <kind>: <text>`. */
  emit(instance: string | null, kind: EventKind, text: string): void;
}

export function createEventLog(io: Io, system: System, loggerProgram: string | null = LOGGER_PROGRAM): EventLog {
  const logger = loggerProgram !== null && existsSync(loggerProgram) ? loggerProgram : null;
  return {
    emit(instance, kind, text) {
      const message = `${instance === null ? '' : `${instance}: `}${kind}: ${text}`;
      io.stderr(`${new Date(system.now()).toISOString()} php-fpm-multi[${system.pid}]: ${message}\n`);
      if (logger === null) return;
      const priority = ERROR_KINDS.has(kind) ? 'daemon.err' : 'daemon.notice';
      // Not awaited: syslog must never hold up a restart. Its failures are dropped.
      system.run(logger, ['-t', SYSLOG_TAG, '-p', priority, '--', message], { env: {}, timeoutMs: LOGGER_TIMEOUT_MS }).catch(() => undefined);
    },
  };
}
