// What the supervisor keeps of each instance it supervises (`Watched`), the jobs it queues for
// the lock, and what its parts see of the supervisor (`Host`): the checks (checks.ts), the
// health probing (health.ts) and the SIGHUP re-read (reread.ts) act through it, not on the class.
import type { Io } from '../cli/command.js';
import type { System } from '../process/system.js';
import type { ActionContext, Declared, Preflight, Supervisable } from './actions.js';
import type { EventKind } from './events.js';
import { iso } from './policy.js';
import type { SupervisedState, SupervisorState } from './state.js';

export interface Watched {
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

export type Job = { kind: 'check' } | { kind: 'health'; pool: string; count: number; error: string };

export function newWatched(target: Supervisable): Watched {
  return {
    name: target.name, target, state: 'starting', pid: null, startTicks: null, runningSinceMs: 0, everUp: false,
    failures: [], consecutive: 0, restarts: 0, lastReason: null, lastReasonAtMs: null, nextAttemptAtMs: null, timer: null,
    foundGoneAtMs: null, pingFailures: new Map(), nextHealthAtMs: 0, healthBusy: false,
  };
}

/** What the supervisor's parts see of it. */
export interface Host {
  readonly io: Io;
  readonly system: System;
  readonly conf: string;
  readonly ctx: ActionContext;
  /** The last good declaration and its preflight (a SIGHUP replaces them). */
  declared: Declared;
  preflightResult: Preflight | null;
  readonly watched: Map<string, Watched>;
  readonly jobs: Map<string, Job>;
  /** Instances of the batch being acted on (no longer in `jobs`): the poll leaves them alone. */
  readonly inFlight: Set<string>;
  emit(name: string | null, kind: EventKind, text: string): void;
  enqueue(name: string, job: Job): void;
  /** Runs `action` in `ms` unless shutdown comes first. */
  later(ms: number, action: () => void): NodeJS.Timeout;
  /** A timer of `later` cleared before it ran. */
  forget(timer: NodeJS.Timeout): void;
  /** The enabled instances among the selection. */
  chooseNames(declared: Declared, report: boolean): string[];
}

export function note(host: Host, w: Watched, reason: string): void {
  w.lastReason = reason;
  w.lastReasonAtMs = host.system.now();
}

export function clearTimer(host: Host, w: Watched): void {
  if (w.timer !== null) {
    clearTimeout(w.timer);
    host.forget(w.timer);
  }
  w.timer = null;
  w.nextAttemptAtMs = null;
}

/** The state file's content (state.ts writes it). */
export function snapshot(watched: Iterable<Watched>, pid: number, ownStartTicks: number, startedAtMs: number, conf: string): SupervisorState {
  return {
    pid,
    start_time_ticks: ownStartTicks,
    started_at: iso(startedAtMs),
    conf,
    instances: Object.fromEntries([...watched].map((w) => [w.name, {
      state: w.state,
      restarts: w.restarts,
      last_reason: w.lastReason,
      last_reason_at: w.lastReasonAtMs === null ? null : iso(w.lastReasonAtMs),
      next_attempt_at: w.nextAttemptAtMs === null ? null : iso(w.nextAttemptAtMs),
    }])),
  };
}
