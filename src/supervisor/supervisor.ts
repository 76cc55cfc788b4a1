// The supervisor: keeps every selected enabled instance running. It watches each recorded master
// with one read of /proc/PID/stat per poll (no lock, no signal), and acts only under the
// controller lock, re-reading the records there: so a `stop`, `restart`, `reload` or `reopen` of
// the CLI (which hold the lock) is seen as what it is, never as a crash. Every action is the CLI's
// own (src/supervisor/actions.ts). The masters are daemonized, not its children: a SIGKILLed
// supervisor leaves them running, and the next one adopts them.
import type { Io } from '../cli/command.js';
import { FpmMultiError, NotConfiguredError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { selectInstances } from '../model/selection.js';
import { mapBounded, MAX_PARALLEL_OPERATIONS } from '../process/parallel.js';
import type { System } from '../process/system.js';
import {
  declaredTargets, inspect, isAlive, isConfigurationFailure, ownStartTicks, pingablePools, pingPool, preflight, prepareRunDirectory,
  readDeclared, readHeld, readRecordedMaster, refuseCollidingDeclaration, restartOne, startOne, stopOne, withLock, withoutRecord,
  type ActionContext, type Declared, type LockedView, type MasterState, type Outcome, type Preflight, type Supervisable,
} from './actions.js';
import { createEventLog, type EventKind, type EventLog } from './events.js';
import type { HeldMark } from './marks.js';
import {
  readLiveSupervisor, removeSupervisorState, writeSupervisorState, type SupervisedState, type SupervisorState,
} from './state.js';

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
const LOCK_RETRY_MS = 1_000;

export type SupervisorSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

/** Where the signals come from: the process in production, an emitter in tests. */
export interface SignalSource {
  on(signal: SupervisorSignal, listener: () => void): void;
  off(signal: SupervisorSignal, listener: () => void): void;
}

export interface SupervisorOptions {
  io: Io;
  system: System;
  conf: string;
  /** Instance names, comma lists and ranges; empty: every enabled instance. */
  selection: readonly string[];
  signals: SignalSource;
  pollIntervalMs?: number;
  /** logger(1) for syslog; null: stderr only. */
  loggerProgram?: string | null;
}

interface Watched {
  name: string;
  /** As declared (pools, error log); the record is read afresh under the lock for every action. */
  target: Supervisable;
  state: SupervisedState;
  pid: number | null;
  startTicks: number | null;
  runningSinceMs: number;
  /** The supervisor has seen it running at least once: a later start is a restart. */
  everUp: boolean;
  /** Times of the failures within the restart_limit period. */
  failures: number[];
  /** Failures in a row (crashes and failed starts): the backoff grows with it. */
  consecutive: number;
  restarts: number;
  lastReason: string | null;
  lastReasonAtMs: number | null;
  nextAttemptAtMs: number | null;
  timer: NodeJS.Timeout | null;
  /** When the poll found its master gone (the check waits for the lock). */
  foundGoneAtMs: number | null;
  /** Consecutive failed pings per pool, with the last error. */
  pingFailures: Map<string, { count: number; error: string }>;
  nextHealthAtMs: number;
  healthBusy: boolean;
}

type Job = { kind: 'check' } | { kind: 'health'; pool: string; count: number; error: string };

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** One line for an event: php-fpm's quoted output is indented on lines of its own. */
function oneLine(text: string): string {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '').join(' | ');
}

/** The wait before the next start after `failures` failures in a row: 0, then 1 s, 2 s, 4 s … 60 s. */
export function backoffMs(failuresInARow: number): number {
  if (failuresInARow <= 1) return 0;
  return Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (failuresInARow - 2));
}

/** What changed in an instance's declaration that only a restart applies; null when nothing did. */
function describeChange(before: Supervisable, after: Supervisable): string | null {
  const a = before.instance;
  const b = after.instance;
  if (a === null || b === null) return null;
  const fields = ['binary', 'config', 'pidfile', 'prefix', 'phpIni', 'iniScanDir', 'env', 'args', 'nice', 'oomScoreAdj'] as const;
  const changed = fields.filter((field) => JSON.stringify(a[field]) !== JSON.stringify(b[field]));
  return changed.length === 0 ? null : changed.join(', ');
}

class Supervisor {
  private readonly io: Io;
  private readonly system: System;
  private readonly conf: string;
  private readonly selection: readonly string[];
  private readonly signals: SignalSource;
  private readonly pollIntervalMs: number;
  private readonly events: EventLog;
  private declared!: Declared;
  private preflightResult: Preflight | null = null;
  private ctx!: ActionContext;
  private readonly watched = new Map<string, Watched>();
  private readonly jobs = new Map<string, Job>();
  /** Instances of the batch being acted on (no longer in `jobs`): the poll leaves them alone. */
  private readonly inFlight = new Set<string>();
  private rereadRequested = false;
  private shuttingDown = false;
  private pumping: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private ticking = false;
  private lastRescanMs = 0;
  private ownStartTicks = 0;
  private startedAtMs = 0;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private finish!: (code: number) => void;
  private readonly listeners: Array<[SupervisorSignal, () => void]> = [];
  private saving: Promise<void> = Promise.resolve();

  constructor(options: SupervisorOptions) {
    this.io = options.io;
    this.system = options.system;
    this.conf = options.conf;
    this.selection = options.selection;
    this.signals = options.signals;
    this.pollIntervalMs = options.pollIntervalMs ?? POLL_INTERVAL_MS;
    this.events = createEventLog(options.io, options.system, options.loggerProgram);
  }

  private emit(name: string | null, kind: EventKind, text: string): void {
    this.events.emit(name, kind, text);
  }

  /** The enabled instances among the selection (all enabled ones without names). */
  private chooseNames(declared: Declared, report: boolean): string[] {
    const instances = declared.model?.instances ?? [];
    const selected = selectInstances(instances, this.selection);
    if (report) {
      for (const instance of selected.filter((i) => !i.enabled)) {
        this.emit(instance.name, 'warning', 'disabled (enabled=no): not supervised; set enabled=yes and send SIGHUP to supervise it');
      }
    }
    return selected.filter((instance) => instance.enabled).map((instance) => instance.name);
  }

  private newWatched(target: Supervisable): Watched {
    return {
      name: target.name, target, state: 'starting', pid: null, startTicks: null, runningSinceMs: 0, everUp: false,
      failures: [], consecutive: 0, restarts: 0, lastReason: null, lastReasonAtMs: null, nextAttemptAtMs: null, timer: null,
      foundGoneAtMs: null, pingFailures: new Map(), nextHealthAtMs: 0, healthBusy: false,
    };
  }

  async run(): Promise<number> {
    const declared = readDeclared(this.io, this.conf);
    const names = this.chooseNames(declared, true);
    if (names.length === 0) {
      throw new NotConfiguredError(`${this.conf} declares no enabled instance${this.selection.length > 0 ? ' among those named' : ''}, so there is nothing to supervise; declare one, e.g. FPM_slot_1="slot=php8.2 config=/etc/php/fpm-php8.2/php-fpm.conf"`);
    }
    const pf = await preflight(this.system, declared, names, this.io.env['PATH']);
    refuseCollidingDeclaration(pf);
    await prepareRunDirectory(this.system, declared);
    const other = await readLiveSupervisor(this.system, declared.runDir);
    if (other !== null && other.pid !== this.system.pid) {
      throw new FpmMultiError(`a supervisor already runs for ${this.conf} (pid ${other.pid}, since ${other.started_at}); stop it first (SIGTERM), or let it go on`);
    }
    this.declared = declared;
    this.preflightResult = pf;
    this.ctx = { system: this.system, io: this.io, conf: this.conf, runDir: declared.runDir, path: this.io.env['PATH'] };
    this.ownStartTicks = await ownStartTicks(this.system);
    this.startedAtMs = this.system.now();
    for (const target of declaredTargets(declared, names, pf)) this.watched.set(target.name, this.newWatched(target));

    const done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    this.listen('SIGTERM', () => this.requestShutdown('SIGTERM'));
    this.listen('SIGINT', () => this.requestShutdown('SIGINT'));
    this.listen('SIGHUP', () => this.requestReread());

    this.emit(null, 'supervising', `${this.conf}: ${names.join(', ')} (pid ${this.system.pid}; run directory ${declared.runDir})`);
    for (const w of this.watched.values()) this.warnUnpingable(w);
    for (const name of this.watched.keys()) this.enqueue(name, { kind: 'check' });
    await this.saveState();
    this.ticker = setInterval(() => void this.tick(), this.pollIntervalMs);
    return done;
  }

  /** health_restart on an instance none of whose pools has a ping.path would silently do nothing. */
  private warnUnpingable(w: Watched): void {
    if (w.target.instance?.healthRestart === undefined || pingablePools(w.target).length > 0) return;
    this.emit(w.name, 'warning', `health_restart=${w.target.instance.healthRestart} has no effect: no pool of ${w.target.instance.config} has a ping.path (add "ping.path = /ping" to a pool)`);
  }

  private listen(signal: SupervisorSignal, listener: () => void): void {
    this.signals.on(signal, listener);
    this.listeners.push([signal, listener]);
  }

  // -------------------------------------------------------------------------------------------
  // Watching: no lock, no signal, one /proc read per master.

  private async tick(): Promise<void> {
    if (this.ticking || this.shuttingDown) return;
    this.ticking = true;
    try {
      const now = this.system.now();
      const rescan = now - this.lastRescanMs >= RESCAN_INTERVAL_MS;
      if (rescan) this.lastRescanMs = now;
      const idle: Watched[] = [];
      // The hot path: synchronous, one read per running master, nothing allocated per instance.
      for (const w of this.watched.values()) {
        if (this.jobs.has(w.name) || this.inFlight.has(w.name)) continue;
        if (w.state === 'running' && w.pid !== null && w.startTicks !== null && w.foundGoneAtMs === null) {
          if (!isAlive(w.pid, w.startTicks)) {
            w.foundGoneAtMs = this.system.now();
            this.enqueue(w.name, { kind: 'check' });
            continue;
          }
          if (w.consecutive > 0 && now - w.runningSinceMs >= STABLE_AFTER_MS) w.consecutive = 0;
          this.probeHealth(w, now);
        } else if (rescan && (w.state === 'held' || w.state === 'failed')) {
          idle.push(w);
        }
      }
      // An admin's `start NAME` of a held or failed instance: its record names a live master, or the mark is gone.
      await Promise.all(idle.map(async (w) => {
        const recorded = await readRecordedMaster(this.system, this.ctx.runDir, w.name);
        const running = recorded !== null && isAlive(recorded.pid, recorded.startTimeTicks);
        const released = w.state === 'held' && (await readHeld(this.system, this.ctx.runDir, w.name)) === null;
        if (running || released) this.enqueue(w.name, { kind: 'check' });
      }));
    } catch (error) {
      this.emit(null, 'warning', `watching failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.ticking = false;
    }
  }

  /** Every health_interval, each pool with a ping.path is pinged; N failures in a row restart the instance. */
  private probeHealth(w: Watched, now: number): void {
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
            await pingPool(this.system, pool);
            return { pool: pool.name, error: null };
          } catch (error) {
            return { pool: pool.name, error: error instanceof Error ? error.message : String(error) };
          }
        }));
        // A failure counts only against the same master, still running and not being acted on:
        // a reload or a start in progress (its master changes, or a job is queued) is not a failure.
        const sameMaster = w.state === 'running' && w.pid === pid && w.startTicks === startTicks && !this.jobs.has(w.name) && !this.inFlight.has(w.name) &&
          pid !== null && startTicks !== null && isAlive(pid, startTicks);
        for (const { pool, error } of results) {
          if (error === null || !sameMaster) {
            w.pingFailures.delete(pool);
            continue;
          }
          const count = (w.pingFailures.get(pool)?.count ?? 0) + 1;
          w.pingFailures.set(pool, { count, error });
          this.emit(w.name, 'health', `pool ${pool} did not answer its ping (${count} of ${limit}): ${oneLine(error)}`);
          if (count >= limit && !this.jobs.has(w.name)) this.enqueue(w.name, { kind: 'health', pool, count, error });
        }
      } finally {
        w.healthBusy = false;
      }
    })();
  }

  // -------------------------------------------------------------------------------------------
  // Acting: always under the lock, one batch at a time.

  private enqueue(name: string, job: Job): void {
    if (this.shuttingDown) return;
    const queued = this.jobs.get(name);
    // A check (is it down?) comes before a health restart of the same instance.
    if (queued?.kind === 'check' && job.kind === 'health') return;
    this.jobs.set(name, job);
    void this.pump();
  }

  private pump(): Promise<void> {
    if (this.pumping !== null) return this.pumping;
    let release!: () => void;
    // Set before the loop runs, so that a loop with nothing to do cannot leave a stale promise here.
    this.pumping = new Promise<void>((resolve) => {
      release = resolve;
    });
    const pumping = this.pumping;
    void (async () => {
      try {
        while (!this.shuttingDown) {
          if (this.rereadRequested) {
            this.rereadRequested = false;
            await this.guard(() => this.reread());
            await this.saveState();
            continue;
          }
          if (this.jobs.size === 0) break;
          const batch = [...this.jobs];
          this.jobs.clear();
          for (const [name] of batch) this.inFlight.add(name);
          try {
            await withLock(this.ctx, this.declared, this.preflightResult, async (view) => {
              const targets = await view.targets(batch.map(([name]) => name));
              await mapBounded(batch, MAX_PARALLEL_OPERATIONS, async ([name, job]) => {
                const w = this.watched.get(name);
                if (w === undefined) return;
                const target = targets.find((t) => t.name === name) ?? withoutRecord(w.target);
                await this.guard(() => (job.kind === 'check' ? this.check(view, w, target) : this.healthRestart(view, w, target, job)));
              });
            });
          } catch (error) {
            // The lock could not be taken (a command held it too long) or the run directory failed: later.
            this.emit(null, 'warning', `${error instanceof Error ? error.message : String(error)}; trying again in ${LOCK_RETRY_MS / 1000} s`);
            this.later(LOCK_RETRY_MS, () => {
              for (const [name, job] of batch) this.enqueue(name, job);
            });
          } finally {
            this.inFlight.clear();
          }
          await this.saveState();
        }
      } finally {
        this.pumping = null;
        release();
      }
    })();
    return pumping;
  }

  private later(ms: number, action: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      action();
    }, ms);
    this.retryTimers.add(timer);
    return timer;
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.emit(null, 'warning', `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }

  private note(w: Watched, reason: string): void {
    w.lastReason = reason;
    w.lastReasonAtMs = this.system.now();
  }

  private clearTimer(w: Watched): void {
    if (w.timer !== null) {
      clearTimeout(w.timer);
      this.retryTimers.delete(w.timer);
    }
    w.timer = null;
    w.nextAttemptAtMs = null;
  }

  /** Under the lock: what is the instance now, and what to do about it. */
  private async check(view: LockedView, w: Watched, target: Supervisable): Promise<void> {
    const foundGoneAtMs = w.foundGoneAtMs;
    w.foundGoneAtMs = null;
    const inspection = await inspect(this.system, target);
    if (inspection.running) {
      // Found through its pidfile alone (its record lost, or a reload made with kill -USR2): the
      // record is written as `start` adopts it, so that every later command finds it by record.
      if (!inspection.recorded && target.instance !== null) {
        const adopted = await startOne(view.control, target);
        if (!adopted.ok) this.emit(w.name, 'warning', oneLine(adopted.message));
      }
      this.follow(w, inspection);
      return;
    }
    const held = await readHeld(this.system, this.ctx.runDir, w.name);
    if (held !== null) {
      this.hold(w, held);
      return;
    }
    if (w.state === 'failed') return; // left alone until an admin's start or restart
    if (w.state === 'running') {
      // Not ours to know how it ended: the master is not our child, so its exit status is its parent's.
      const reason = `its master (pid ${w.pid}) exited (found gone at ${iso(foundGoneAtMs ?? this.system.now())})`;
      this.note(w, reason);
      w.pid = null;
      w.startTicks = null;
      const delay = this.countFailure(w, 'crashed', reason);
      if (delay === null) return;
      if (delay > 0) {
        this.backoff(w, delay);
        return;
      }
    }
    await this.attempt(view, w, target);
  }

  /** A failure: the instance is `failed` past restart_limit (returns null), else the wait before the next start. */
  private countFailure(w: Watched, kind: EventKind, reason: string, afterFailedStart = false): number | null {
    const now = this.system.now();
    const limit = w.target.instance?.restartLimit ?? DEFAULT_RESTART_LIMIT;
    w.failures = w.failures.filter((at) => now - at < limit.periodMs);
    w.failures.push(now);
    w.consecutive += 1;
    if (w.failures.length >= limit.count) {
      this.emit(w.name, kind, reason);
      this.fail(w, `${w.failures.length} failures within ${limit.periodMs / 1000} s (restart_limit=${limit.count}/${limit.periodMs / 1000})`);
      return null;
    }
    // A crash is restarted at once the first time; a failed start is never retried at once.
    const delay = backoffMs(afterFailedStart ? w.consecutive + 1 : w.consecutive);
    this.emit(w.name, kind, `${reason}; ${delay === 0 ? 'starting it again' : `failure ${w.failures.length} of ${limit.count} within ${limit.periodMs / 1000} s`}`);
    return delay;
  }

  private fail(w: Watched, why: string): void {
    this.clearTimer(w);
    w.state = 'failed';
    w.pid = null;
    w.startTicks = null;
    this.emit(w.name, 'failed', `${why}; left stopped until php-fpm-multi start ${w.name} (or restart)`);
  }

  private backoff(w: Watched, delayMs: number): void {
    this.clearTimer(w);
    w.state = 'backoff';
    w.nextAttemptAtMs = this.system.now() + delayMs;
    this.emit(w.name, 'backoff', `next start in ${delayMs / 1000} s (${w.consecutive} failures in a row)`);
    w.timer = this.later(delayMs, () => {
      w.timer = null;
      this.enqueue(w.name, { kind: 'check' });
    });
  }

  private hold(w: Watched, held: HeldMark): void {
    this.clearTimer(w);
    if (w.state !== 'held') {
      const at = held.atMs > 0 ? ` at ${iso(held.atMs)}` : '';
      this.emit(w.name, 'held', `stopped by php-fpm-multi stop${at}: left stopped until php-fpm-multi start ${w.name}`);
    }
    w.state = 'held';
    w.pid = null;
    w.startTicks = null;
  }

  /** A master runs: ours to watch, whoever started it (a CLI restart or reload replaces it). */
  private follow(w: Watched, inspection: MasterState & { running: true }): void {
    this.clearTimer(w);
    const { pid, startTicks } = inspection;
    const changed = w.pid !== pid || w.startTicks !== startTicks;
    if (w.state === 'failed' || w.state === 'held') {
      this.emit(w.name, 'resumed', `runs again (pid ${pid}), started outside the supervisor: supervised again`);
      w.failures = [];
      w.consecutive = 0;
    } else if (w.pid === null && !w.everUp) {
      this.emit(w.name, 'adopted', `already running (pid ${pid}): supervised, not restarted`);
    } else if (changed) {
      this.emit(w.name, 'followed', `its master is now pid ${pid}${w.pid === null ? '' : ` (was ${w.pid})`}: replaced by a reload or restart, not a crash`);
    }
    if (changed) {
      w.runningSinceMs = this.system.now();
      w.pingFailures.clear();
    }
    w.state = 'running';
    w.pid = pid;
    w.startTicks = startTicks;
    w.everUp = true;
  }

  /** Starts the instance as `start` does; a failure counts towards restart_limit. */
  private async attempt(view: LockedView, w: Watched, target: Supervisable): Promise<void> {
    this.clearTimer(w);
    if (target.instance === null) {
      this.note(w, `cannot be started: ${target.unusable ?? 'not declared'}`);
      this.fail(w, `cannot be started: ${oneLine(target.unusable ?? 'it is not declared')}`);
      return;
    }
    w.state = 'starting';
    const outcome = await startOne(view.control, target);
    await this.afterStart(view, w, outcome);
  }

  private async afterStart(view: LockedView, w: Watched, outcome: Outcome): Promise<void> {
    if (outcome.ok) {
      const [fresh] = await view.targets([w.name]);
      const inspection = fresh === undefined ? null : await inspect(this.system, fresh);
      if (inspection?.running === true) {
        const restart = w.everUp;
        w.state = 'running';
        w.pid = inspection.pid;
        w.startTicks = inspection.startTicks;
        w.runningSinceMs = this.system.now();
        w.everUp = true;
        w.pingFailures.clear();
        if (restart) {
          w.restarts += 1;
          this.emit(w.name, 'restarted', `${oneLine(outcome.message)}${w.lastReason === null ? '' : ` (after: ${w.lastReason})`}`);
        } else {
          this.emit(w.name, 'started', oneLine(outcome.message));
        }
        return;
      }
      outcome = { ...outcome, ok: false, message: `${outcome.message}, but its master was gone right after` };
    }
    const message = oneLine(outcome.message);
    this.note(w, message);
    if (isConfigurationFailure(outcome)) {
      this.emit(w.name, 'start-failed', message);
      this.fail(w, 'php-fpm reports a configuration error (exit status 78): retrying cannot help; fix it');
      return;
    }
    const delay = this.countFailure(w, 'start-failed', message, true);
    if (delay !== null) this.backoff(w, Math.max(delay, 1000));
  }

  /** Under the lock: a pool failed N pings in a row; restarted the way `restart` does, config test first. */
  private async healthRestart(view: LockedView, w: Watched, target: Supervisable, job: Job & { kind: 'health' }): Promise<void> {
    const inspection = await inspect(this.system, target);
    if (!inspection.running || inspection.pid !== w.pid) {
      w.pingFailures.clear(); // replaced or gone meanwhile: the poll takes it from here
      return;
    }
    const pool = pingablePools(target).find((p) => p.name === job.pool);
    if (pool !== undefined) {
      try {
        await pingPool(this.system, pool);
        w.pingFailures.delete(job.pool);
        this.emit(w.name, 'health', `pool ${job.pool} answers again: not restarted`);
        return;
      } catch {
        // still failing: restart
      }
    }
    const reason = `pool ${job.pool} failed ${job.count} pings`;
    this.note(w, reason);
    this.emit(w.name, 'health-restart', `${reason} (last: ${oneLine(job.error)}); restarting it (config test, stop, start)`);
    w.state = 'starting';
    const { outcome, stopped } = await restartOne(view.control, target);
    w.pingFailures.clear();
    if (!stopped) {
      w.state = 'running';
      this.emit(w.name, 'warning', `health restart not done, left running: ${oneLine(outcome.message)}`);
      return;
    }
    await this.afterStart(view, w, outcome);
  }

  // -------------------------------------------------------------------------------------------
  // SIGHUP: the declaration again.

  private requestReread(): void {
    if (this.shuttingDown) return;
    this.rereadRequested = true;
    void this.pump();
  }

  private async reread(): Promise<void> {
    const keep = 'still supervising the last good declaration';
    let declared: Declared;
    let names: string[];
    let pf: Preflight | null;
    try {
      declared = readDeclared(this.io, this.conf);
      names = this.chooseNames(declared, false);
      pf = await preflight(this.system, declared, names, this.io.env['PATH']);
      refuseCollidingDeclaration(pf);
    } catch (error) {
      this.emit(null, 'reread', `${this.conf} is unusable (${oneLine(error instanceof Error ? error.message : String(error))}); ${keep}`);
      return;
    }
    if (declared.runDir !== this.ctx.runDir) {
      this.emit(null, 'reread', `the run directory changed (${this.ctx.runDir} → ${declared.runDir}): restart the supervisor to use it; ${keep}`);
      return;
    }
    const targets = declaredTargets(declared, names, pf);
    const added: string[] = [];
    const changed: string[] = [];
    const removed = [...this.watched.keys()].filter((name) => !names.includes(name));
    this.declared = declared;
    this.preflightResult = pf;
    for (const target of targets) {
      const w = this.watched.get(target.name);
      if (w === undefined) {
        this.watched.set(target.name, this.newWatched(target));
        added.push(target.name);
        continue;
      }
      if (target.instance === null) {
        this.emit(target.name, 'warning', `its declaration now has a problem (${oneLine(target.unusable ?? '')}); supervised as it was`);
        continue;
      }
      const change = describeChange(w.target, target);
      if (change !== null) {
        changed.push(target.name);
        this.emit(target.name, 'needs-restart', `${change} changed in ${this.conf}: run php-fpm-multi restart ${target.name} to apply it (not restarted by the supervisor)`);
      }
      w.target = target;
    }
    this.emit(null, 'reread', `${this.conf}: added ${added.join(', ') || 'none'}; removed ${removed.join(', ') || 'none'}; changed ${changed.join(', ') || 'none'}`);
    if (removed.length > 0) {
      for (const name of removed) {
        const w = this.watched.get(name)!;
        this.clearTimer(w);
        w.state = 'stopping';
      }
      await withLock(this.ctx, declared, pf, async (view) => {
        const targetsNow = await view.targets(removed);
        await mapBounded(removed, Infinity, async (name) => {
          const target = targetsNow.find((t) => t.name === name);
          const outcome = target === undefined ? { name, ok: true, message: 'not running' } : await stopOne(view.control, target);
          this.emit(name, 'stopped', `removed from ${this.conf} or disabled: ${oneLine(outcome.message)}`);
          this.watched.delete(name);
          this.jobs.delete(name);
        });
      });
    }
    for (const name of added) {
      this.warnUnpingable(this.watched.get(name)!);
      this.enqueue(name, { kind: 'check' });
    }
  }

  // -------------------------------------------------------------------------------------------
  // SIGTERM, SIGINT: stop everything supervised, as `stop` does, then exit.

  private requestShutdown(signal: SupervisorSignal): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.emit(null, 'stopped', `${signal}: stopping every supervised instance`);
    void this.shutdown().then((code) => this.finish(code), (error: unknown) => {
      this.emit(null, 'warning', `internal error while stopping: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      this.finish(EXIT_FAILURE);
    });
  }

  private async shutdown(): Promise<number> {
    if (this.ticker !== null) clearInterval(this.ticker);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    this.jobs.clear();
    while (this.pumping !== null) await this.pumping; // the action in progress finishes first
    for (const w of this.watched.values()) {
      w.timer = null;
      w.state = 'stopping';
    }
    await this.saveState();
    const names = [...this.watched.keys()];
    const outcomes = await withLock(this.ctx, this.declared, this.preflightResult, async (view) => {
      const targets = await view.targets(names);
      return mapBounded(targets, Infinity, async (target) => {
        const outcome = await stopOne(view.control, target);
        this.emit(target.name, 'stopped', oneLine(outcome.message));
        return outcome;
      });
    });
    for (const [signal, listener] of this.listeners) this.signals.off(signal, listener);
    await removeSupervisorState(this.system, this.ctx.runDir);
    const failed = outcomes.filter((outcome) => !outcome.ok);
    this.emit(null, 'stopped', failed.length === 0 ? 'every supervised instance is stopped; exiting' : `not stopped: ${failed.map((o) => o.name).join(', ')}; exiting`);
    return failed.length === 0 ? EXIT_OK : EXIT_FAILURE;
  }

  // -------------------------------------------------------------------------------------------

  /** Writes one at a time, in order: an older snapshot never lands after a newer one. */
  private saveState(): Promise<void> {
    this.saving = this.saving.then(() => this.writeState());
    return this.saving;
  }

  private async writeState(): Promise<void> {
    const state: SupervisorState = {
      pid: this.system.pid,
      start_time_ticks: this.ownStartTicks,
      started_at: iso(this.startedAtMs),
      conf: this.conf,
      instances: Object.fromEntries([...this.watched.values()].map((w) => [w.name, {
        state: w.state,
        restarts: w.restarts,
        last_reason: w.lastReason,
        last_reason_at: w.lastReasonAtMs === null ? null : iso(w.lastReasonAtMs),
        next_attempt_at: w.nextAttemptAtMs === null ? null : iso(w.nextAttemptAtMs),
      }])),
    };
    try {
      await writeSupervisorState(this.system, this.ctx.runDir, state);
    } catch (error) {
      this.emit(null, 'warning', `cannot write the state file in ${this.ctx.runDir}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Runs the supervisor until SIGTERM or SIGINT; returns the exit code (0 when every instance stopped). */
export function runSupervisor(options: SupervisorOptions): Promise<number> {
  return new Supervisor(options).run();
}
