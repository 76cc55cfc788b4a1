// Where an instance's php-fpm master logs, as list, status --json, check and logs say it: the
// error_log file its configuration resolves to, syslog (with where to look), or unknown and why.
// Pure: the configuration is read by the caller (src/process/log-location.ts).
import type { FpmConfig } from './config/types.js';

export type LogLocation =
  /** `configured`: false when the configuration sets no error_log and php-fpm's compiled-in default is used. */
  | { kind: 'file'; path: string; configured: boolean }
  | { kind: 'syslog'; ident: string; facility: string }
  | { kind: 'unknown'; why: string };

/** The log of a configuration read as php-fpm reads it. */
export function locateLog(config: FpmConfig): LogLocation {
  const { errorLog, errorLogAt } = config.global;
  if (errorLog.kind === 'syslog') return { kind: 'syslog', ident: errorLog.ident, facility: errorLog.facility };
  return { kind: 'file', path: errorLog.path, configured: errorLogAt !== null && errorLogAt !== undefined };
}

/** Where an admin finds what php-fpm sent to syslog: journald by ident, else rsyslog's file. */
export function describeSyslog(ident: string, facility: string): string {
  return `php-fpm logs to syslog (ident ${ident}, facility ${facility}): read it with "journalctl -t ${ident}", or in /var/log/syslog where rsyslog writes facility ${facility} by default`;
}

/** The `log` field of list --json and status --json. */
export function toLogJson(location: LogLocation): object {
  switch (location.kind) {
    case 'file': return { kind: 'file', path: location.path, configured: location.configured };
    case 'syslog': return { kind: 'syslog', ident: location.ident, facility: location.facility };
    case 'unknown': return { kind: 'unknown', why: location.why };
  }
}

/** The LOG column of list: the path, `syslog:<ident>`, or `-` (the instance's problems are listed below the table). */
export function formatLogColumn(location: LogLocation): string {
  switch (location.kind) {
    case 'file': return location.path;
    case 'syslog': return `syslog:${location.ident}`;
    case 'unknown': return '-';
  }
}
