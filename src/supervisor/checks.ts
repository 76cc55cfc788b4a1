// What the supervisor does under the controller lock about one instance: what it is now (running,
// held down by `stop`, gone) and what follows: follow a replaced master, leave a held or failed one
// alone, restart a crashed one at once or after the crash-loop backoff, give up past restart_limit.
// Starts are the CLI's own (actions.ts); the counting is policy.ts's.
import {
  inspect, isConfigurationFailure, readHeld, startOne, type LockedView, type MasterState, type Outcome, type Supervisable,
} from './actions.js';
import type { EventKind } from './events.js';
import type { HeldMark } from './marks.js';
import { countFailureAt, DEFAULT_RESTART_LIMIT, iso, oneLine } from './policy.js';
import { clearTimer, note, type Host, type Watched } from './watched.js';

/** Under the lock: what is the instance now, and what to do about it. */
export async function check(host: Host, view: LockedView, w: Watched, target: Supervisable): Promise<void> {
  const foundGoneAtMs = w.foundGoneAtMs;
  w.foundGoneAtMs = null;
  const inspection = await inspect(host.system, target);
  if (inspection.running) {
    // Found through its pidfile alone (its record lost, or a reload made with kill -USR2): the
    // record is written as `start` adopts it, so that every later command finds it by record.
    if (!inspection.recorded && target.instance !== null) {
      const adopted = await startOne(view.control, target);
      if (!adopted.ok) host.emit(w.name, 'warning', oneLine(adopted.message));
    }
    follow(host, w, inspection);
    return;
  }
  const held = await readHeld(host.system, host.ctx.runDir, w.name);
  if (held !== null) {
    hold(host, w, held);
    return;
  }
  if (w.state === 'failed') return; // left alone until an admin's start or restart
  if (w.state === 'running') {
    // Not ours to know how it ended: the master is not our child, so its exit status is its parent's.
    const reason = `its master (pid ${w.pid}) exited (found gone at ${iso(foundGoneAtMs ?? host.system.now())})`;
    note(host, w, reason);
    w.pid = null;
    w.startTicks = null;
    const delay = countFailure(host, w, 'crashed', reason);
    if (delay === null) return;
    if (delay > 0) {
      backoff(host, w, delay);
      return;
    }
  }
  await attempt(host, view, w, target);
}

/** A failure: the instance is `failed` past restart_limit (returns null), else the wait before the next start. */
function countFailure(host: Host, w: Watched, kind: EventKind, reason: string, afterFailedStart = false): number | null {
  const limit = w.target.instance?.restartLimit ?? DEFAULT_RESTART_LIMIT;
  const counted = countFailureAt(w.failures, w.consecutive, host.system.now(), limit, afterFailedStart);
  w.failures = counted.failures;
  w.consecutive = counted.consecutive;
  if (counted.exceeded) {
    host.emit(w.name, kind, reason);
    fail(host, w, `${w.failures.length} failures within ${limit.periodMs / 1000} s (restart_limit=${limit.count}/${limit.periodMs / 1000})`);
    return null;
  }
  const delay = counted.delayMs;
  host.emit(w.name, kind, `${reason}; ${delay === 0 ? 'starting it again' : `failure ${w.failures.length} of ${limit.count} within ${limit.periodMs / 1000} s`}`);
  return delay;
}

function fail(host: Host, w: Watched, why: string): void {
  clearTimer(host, w);
  w.state = 'failed';
  w.pid = null;
  w.startTicks = null;
  host.emit(w.name, 'failed', `${why}; left stopped until php-fpm-multi start ${w.name} (or restart)`);
}

function backoff(host: Host, w: Watched, delayMs: number): void {
  clearTimer(host, w);
  w.state = 'backoff';
  w.nextAttemptAtMs = host.system.now() + delayMs;
  host.emit(w.name, 'backoff', `next start in ${delayMs / 1000} s (${w.consecutive} failures in a row)`);
  w.timer = host.later(delayMs, () => {
    w.timer = null;
    host.enqueue(w.name, { kind: 'check' });
  });
}

function hold(host: Host, w: Watched, held: HeldMark): void {
  clearTimer(host, w);
  if (w.state !== 'held') {
    const at = held.atMs > 0 ? ` at ${iso(held.atMs)}` : '';
    host.emit(w.name, 'held', `stopped by php-fpm-multi stop${at}: left stopped until php-fpm-multi start ${w.name}`);
  }
  w.state = 'held';
  w.pid = null;
  w.startTicks = null;
}

/** A master runs: ours to watch, whoever started it (a CLI restart or reload replaces it). */
function follow(host: Host, w: Watched, inspection: MasterState & { running: true }): void {
  clearTimer(host, w);
  const { pid, startTicks } = inspection;
  const changed = w.pid !== pid || w.startTicks !== startTicks;
  if (w.state === 'failed' || w.state === 'held') {
    host.emit(w.name, 'resumed', `runs again (pid ${pid}), started outside the supervisor: supervised again`);
    w.failures = [];
    w.consecutive = 0;
  } else if (w.pid === null && !w.everUp) {
    host.emit(w.name, 'adopted', `already running (pid ${pid}): supervised, not restarted`);
  } else if (changed) {
    host.emit(w.name, 'followed', `its master is now pid ${pid}${w.pid === null ? '' : ` (was ${w.pid})`}: replaced by a reload or restart, not a crash`);
  }
  if (changed) {
    w.runningSinceMs = host.system.now();
    w.pingFailures.clear();
  }
  w.state = 'running';
  w.pid = pid;
  w.startTicks = startTicks;
  w.everUp = true;
}

/** Starts the instance as `start` does; a failure counts towards restart_limit. */
async function attempt(host: Host, view: LockedView, w: Watched, target: Supervisable): Promise<void> {
  clearTimer(host, w);
  if (target.instance === null) {
    note(host, w, `cannot be started: ${target.unusable ?? 'not declared'}`);
    fail(host, w, `cannot be started: ${oneLine(target.unusable ?? 'it is not declared')}`);
    return;
  }
  w.state = 'starting';
  const outcome = await startOne(view.control, target);
  await afterStart(host, view, w, outcome);
}

/** After a start or a restart's start: running (a start or a restart), or a failure counted. */
export async function afterStart(host: Host, view: LockedView, w: Watched, outcome: Outcome): Promise<void> {
  if (outcome.ok) {
    const [fresh] = await view.targets([w.name]);
    const inspection = fresh === undefined ? null : await inspect(host.system, fresh);
    if (inspection?.running === true) {
      const restart = w.everUp;
      w.state = 'running';
      w.pid = inspection.pid;
      w.startTicks = inspection.startTicks;
      w.runningSinceMs = host.system.now();
      w.everUp = true;
      w.pingFailures.clear();
      if (restart) {
        w.restarts += 1;
        host.emit(w.name, 'restarted', `${oneLine(outcome.message)}${w.lastReason === null ? '' : ` (after: ${w.lastReason})`}`);
      } else {
        host.emit(w.name, 'started', oneLine(outcome.message));
      }
      return;
    }
    outcome = { ...outcome, ok: false, message: `${outcome.message}, but its master was gone right after` };
  }
  const message = oneLine(outcome.message);
  note(host, w, message);
  if (isConfigurationFailure(outcome)) {
    host.emit(w.name, 'start-failed', message);
    fail(host, w, 'php-fpm reports a configuration error (exit status 78): retrying cannot help; fix it');
    return;
  }
  const delay = countFailure(host, w, 'start-failed', message, true);
  if (delay !== null) backoff(host, w, Math.max(delay, 1000));
}
