// The supervisor's health probing (health_restart): every health_interval each pool of a running
// instance that has a ping.path is pinged, with no lock; N failed pings in a row against the same
// master queue a restart, done under the lock the way `restart` does it (config test first).
import { inspect, isAlive, pingablePools, pingPool, restartOne, type LockedView, type Supervisable } from './actions.js';
import { afterStart } from './checks.js';
import { DEFAULT_HEALTH_INTERVAL_MS, oneLine } from './policy.js';
import { note, type Host, type Job, type Watched } from './watched.js';

/** health_restart on an instance none of whose pools has a ping.path would silently do nothing. */
export function warnUnpingable(host: Host, w: Watched): void {
  if (w.target.instance?.healthRestart === undefined || pingablePools(w.target).length > 0) return;
  host.emit(w.name, 'warning', `health_restart=${w.target.instance.healthRestart} has no effect: no pool of ${w.target.instance.config} has a ping.path (add "ping.path = /ping" to a pool)`);
}

/** Every health_interval, each pool with a ping.path is pinged; N failures in a row restart the instance. */
export function probeHealth(host: Host, w: Watched, now: number): void {
  const limit = w.target.instance?.healthRestart;
  if (limit === undefined || w.healthBusy || now < w.nextHealthAtMs) return;
  const pools = pingablePools(w.target);
  if (pools.length === 0) return;
  w.healthBusy = true;
  w.nextHealthAtMs = now + (w.target.instance?.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS);
  const pid = w.pid;
  const startTicks = w.startTicks;
  void (async () => {
    try {
      const results = await Promise.all(pools.map(async (pool) => {
        try {
          await pingPool(host.system, pool);
          return { pool: pool.name, error: null };
        } catch (error) {
          return { pool: pool.name, error: error instanceof Error ? error.message : String(error) };
        }
      }));
      // A failure counts only against the same master, still running and not being acted on:
      // a reload or a start in progress (its master changes, or a job is queued) is not a failure.
      const sameMaster = w.state === 'running' && w.pid === pid && w.startTicks === startTicks && !host.jobs.has(w.name) && !host.inFlight.has(w.name) &&
        pid !== null && startTicks !== null && isAlive(pid, startTicks);
      for (const { pool, error } of results) {
        if (error === null || !sameMaster) {
          w.pingFailures.delete(pool);
          continue;
        }
        const count = (w.pingFailures.get(pool)?.count ?? 0) + 1;
        w.pingFailures.set(pool, { count, error });
        host.emit(w.name, 'health', `pool ${pool} did not answer its ping (${count} of ${limit}): ${oneLine(error)}`);
        if (count >= limit && !host.jobs.has(w.name)) host.enqueue(w.name, { kind: 'health', pool, count, error });
      }
    } finally {
      w.healthBusy = false;
    }
  })();
}

/** Under the lock: a pool failed N pings in a row; restarted the way `restart` does, config test first. */
export async function healthRestart(host: Host, view: LockedView, w: Watched, target: Supervisable, job: Job & { kind: 'health' }): Promise<void> {
  const inspection = await inspect(host.system, target);
  if (!inspection.running || inspection.pid !== w.pid) {
    w.pingFailures.clear(); // replaced or gone meanwhile: the poll takes it from here
    return;
  }
  const pool = pingablePools(target).find((p) => p.name === job.pool);
  if (pool !== undefined) {
    try {
      await pingPool(host.system, pool);
      w.pingFailures.delete(job.pool);
      host.emit(w.name, 'health', `pool ${job.pool} answers again: not restarted`);
      return;
    } catch {
      // still failing: restart
    }
  }
  const reason = `pool ${job.pool} failed ${job.count} pings`;
  note(host, w, reason);
  host.emit(w.name, 'health-restart', `${reason} (last: ${oneLine(job.error)}); restarting it (config test, stop, start)`);
  w.state = 'starting';
  const { outcome, stopped } = await restartOne(view.control, target);
  w.pingFailures.clear();
  if (!stopped) {
    w.state = 'running';
    host.emit(w.name, 'warning', `health restart not done, left running: ${oneLine(outcome.message)}`);
    return;
  }
  await afterStart(host, view, w, outcome);
}
