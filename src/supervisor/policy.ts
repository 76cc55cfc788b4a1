// The supervisor's policy, pure: its timings, the crash-loop backoff, the restart_limit
// accounting of one instance's failures, and what a re-read declaration changed that only a
// restart applies. No IO: the supervisor (src/supervisor/supervisor.ts) acts on what these say.
import type { RestartLimit } from '../model/instance.js';
import type { Supervisable } from './actions.js';

/** How often each recorded master is looked at: a dead one is noticed within this. */
export const POLL_INTERVAL_MS = 200;
/** How often held-down and failed instances are looked at again (an admin's `start NAME`). */
export const RESCAN_INTERVAL_MS = 1_000;
/** A master that ran this long ends a crash loop: the next crash restarts it at once again. */
export const STABLE_AFTER_MS = 10_000;
/** The longest wait between two start attempts of a crash loop. */
export const BACKOFF_MAX_MS = 60_000;
export const DEFAULT_RESTART_LIMIT = { count: 5, periodMs: 300_000 } as const;
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
/** After the lock could not be taken (a CLI command held it very long), try again this much later. */
export const LOCK_RETRY_MS = 1_000;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** One line for an event: php-fpm's quoted output is indented on lines of its own. */
export function oneLine(text: string): string {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '').join(' | ');
}

/** The wait before the next start after `failures` failures in a row: 0, then 1 s, 2 s, 4 s … 60 s. */
export function backoffMs(failuresInARow: number): number {
  if (failuresInARow <= 1) return 0;
  return Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (failuresInARow - 2));
}

/** One more failure at `now`: the failures still within the period, and whether restart_limit is reached. */
export interface FailureCount {
  /** Times of the failures within the restart_limit period, this one last. */
  failures: number[];
  /** Failures in a row, this one included. */
  consecutive: number;
  /** restart_limit is reached: the instance is given up on. */
  exceeded: boolean;
  /** Else the wait before the next start. */
  delayMs: number;
}

/** Counts a failure: a crash is restarted at once the first time; a failed start is never retried at once. */
export function countFailureAt(
  failures: readonly number[], consecutive: number, now: number, limit: RestartLimit, afterFailedStart: boolean,
): FailureCount {
  const within = failures.filter((at) => now - at < limit.periodMs);
  within.push(now);
  const inARow = consecutive + 1;
  if (within.length >= limit.count) return { failures: within, consecutive: inARow, exceeded: true, delayMs: 0 };
  return { failures: within, consecutive: inARow, exceeded: false, delayMs: backoffMs(afterFailedStart ? inARow + 1 : inARow) };
}

/** What changed in an instance's declaration that only a restart applies; null when nothing did. */
export function describeChange(before: Supervisable, after: Supervisable): string | null {
  const a = before.instance;
  const b = after.instance;
  if (a === null || b === null) return null;
  const fields = ['binary', 'config', 'pidfile', 'prefix', 'phpIni', 'iniScanDir', 'env', 'args', 'nice', 'oomScoreAdj'] as const;
  const changed = fields.filter((field) => JSON.stringify(a[field]) !== JSON.stringify(b[field]));
  return changed.length === 0 ? null : changed.join(', ');
}
