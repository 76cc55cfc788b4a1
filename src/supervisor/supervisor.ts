// The supervisor: keeps every selected enabled instance running. It watches each recorded master
// with one read of /proc/PID/stat per poll (no lock, no signal), and acts only under the
// controller lock, re-reading the records there: so a `stop`, `restart`, `reload` or `reopen` of
// the CLI (which hold the lock) is seen as what it is, never as a crash. Every action is the CLI's
// own (src/supervisor/actions.ts). The masters are daemonized, not its children: a SIGKILLed
// supervisor leaves them running, and the next one adopts them. This class is the orchestration:
// the poll, the job queue and its pump under the lock, signals, shutdown and the state file; what
// a check decides is checks.ts, health probing health.ts, the SIGHUP re-read reread.ts, and the
// timings, backoff and restart_limit accounting policy.ts.
import type { Io } from '../cli/command.js';
import { FpmMultiError, NotConfiguredError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { selectInstances } from '../model/selection.js';
import { mapBounded, MAX_PARALLEL_OPERATIONS } from '../process/parallel.js';
import type { System } from '../process/system.js';
import {
  declaredTargets, isAlive, ownStartTicks, preflight, prepareRunDirectory, readDeclared, readHeld, readRecordedMaster,
  refuseCollidingDeclaration, stopOne, withLock, withoutRecord, type ActionContext, type Declared, type Preflight,
} from './actions.js';
import { check } from './checks.js';
import { createEventLog, type EventKind, type EventLog } from './events.js';
import { healthRestart, probeHealth, warnUnpingable } from './health.js';
import { LOCK_RETRY_MS, oneLine, POLL_INTERVAL_MS, RESCAN_INTERVAL_MS, STABLE_AFTER_MS } from './policy.js';
import { reread } from './reread.js';
import { readLiveSupervisor, removeSupervisorState, writeSupervisorState } from './state.js';
import { newWatched, snapshot, type Host, type Job, type Watched } from './watched.js';

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

class Supervisor implements Host {
  readonly io: Io;
  readonly system: System;
  readonly conf: string;
  private readonly selection: readonly string[];
  private readonly signals: SignalSource;
  private readonly pollIntervalMs: number;
  private readonly events: EventLog;
  declared!: Declared;
  preflightResult: Preflight | null = null;
  ctx!: ActionContext;
  readonly watched = new Map<string, Watched>();
  readonly jobs = new Map<string, Job>();
  /** Instances of the batch being acted on (no longer in `jobs`): the poll leaves them alone. */
  readonly inFlight = new Set<string>();
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

  emit(name: string | null, kind: EventKind, text: string): void {
    this.events.emit(name, kind, text);
  }

  /** The enabled instances among the selection (all enabled ones without names). */
  chooseNames(declared: Declared, report: boolean): string[] {
    const instances = declared.model?.instances ?? [];
    const selected = selectInstances(instances, this.selection);
    if (report) {
      for (const instance of selected.filter((i) => !i.enabled)) {
        this.emit(instance.name, 'warning', 'disabled (enabled=no): not supervised; set enabled=yes and send SIGHUP to supervise it');
      }
    }
    return selected.filter((instance) => instance.enabled).map((instance) => instance.name);
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
    for (const target of declaredTargets(declared, names, pf)) this.watched.set(target.name, newWatched(target));

    const done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    this.listen('SIGTERM', () => this.requestShutdown('SIGTERM'));
    this.listen('SIGINT', () => this.requestShutdown('SIGINT'));
    this.listen('SIGHUP', () => this.requestReread());

    this.emit(null, 'supervising', `${this.conf}: ${names.join(', ')} (pid ${this.system.pid}; run directory ${declared.runDir})`);
    for (const w of this.watched.values()) warnUnpingable(this, w);
    for (const name of this.watched.keys()) this.enqueue(name, { kind: 'check' });
    await this.saveState();
    this.ticker = setInterval(() => void this.tick(), this.pollIntervalMs);
    return done;
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
          probeHealth(this, w, now);
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

  // -------------------------------------------------------------------------------------------
  // Acting: always under the lock, one batch at a time.

  enqueue(name: string, job: Job): void {
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
            await this.guard(() => reread(this));
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
                await this.guard(() => (job.kind === 'check' ? check(this, view, w, target) : healthRestart(this, view, w, target, job)));
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

  later(ms: number, action: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      action();
    }, ms);
    this.retryTimers.add(timer);
    return timer;
  }

  forget(timer: NodeJS.Timeout): void {
    this.retryTimers.delete(timer);
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.emit(null, 'warning', `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // SIGHUP: the declaration again.

  private requestReread(): void {
    if (this.shuttingDown) return;
    this.rereadRequested = true;
    void this.pump();
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
    const state = snapshot(this.watched.values(), this.system.pid, this.ownStartTicks, this.startedAtMs, this.conf);
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
