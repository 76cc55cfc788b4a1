// The supervisor's state file in the run directory (`supervisor.json`, written atomically): who
// supervises (pid and start time, so that `status` can verify it runs: a file alone proves
// nothing), and per instance its state, restarts since the supervisor started, and the last reason.
import { posix as path } from 'node:path';
import { readProcess } from '../process/proc.js';
import { errnoCode, RECORD_MAX_BYTES, type System } from '../process/system.js';

export const STATE_FILE = 'supervisor.json';
const STATE_MODE = 0o644;

/** `running` … `failed`: what the supervisor does about the instance right now. */
export type SupervisedState = 'starting' | 'running' | 'backoff' | 'failed' | 'held' | 'stopping';

export interface SupervisedInstanceState {
  state: SupervisedState;
  restarts: number;
  last_reason: string | null;
  /** ISO time of the last reason. */
  last_reason_at: string | null;
  /** ISO time of the next start attempt while in backoff. */
  next_attempt_at: string | null;
}

export interface SupervisorState {
  pid: number;
  start_time_ticks: number;
  started_at: string;
  conf: string;
  instances: Record<string, SupervisedInstanceState>;
}

export function statePath(runDir: string): string {
  return path.join(runDir, STATE_FILE);
}

export async function writeSupervisorState(system: System, runDir: string, state: SupervisorState): Promise<void> {
  await system.writeFileAtomic(statePath(runDir), `${JSON.stringify(state)}\n`, STATE_MODE);
}

export async function removeSupervisorState(system: System, runDir: string): Promise<void> {
  try {
    await system.unlink(statePath(runDir));
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}

function isState(value: unknown): value is SupervisorState {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return Number.isInteger(s['pid']) && (s['pid'] as number) > 1 && Number.isInteger(s['start_time_ticks']) &&
    typeof s['started_at'] === 'string' && typeof s['conf'] === 'string' && typeof s['instances'] === 'object' && s['instances'] !== null;
}

/** The state file as written, or null (none, unreadable, or not ours: it only explains). */
export async function readSupervisorState(system: System, runDir: string): Promise<SupervisorState | null> {
  try {
    const parsed: unknown = JSON.parse(await system.readFile(statePath(runDir), { maxBytes: RECORD_MAX_BYTES * 16, noFollow: true }));
    return isState(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/**
 * The state of the supervisor that runs now for this run directory, or null: the file's pid must
 * be alive with the recorded start time and run php-fpm-multi's `supervise` (a reused pid has
 * another start time; a SIGKILLed supervisor leaves a file naming a dead pid).
 */
export async function readLiveSupervisor(system: System, runDir: string): Promise<SupervisorState | null> {
  const state = await readSupervisorState(system, runDir);
  if (state === null) return null;
  const proc = await readProcess(system, state.pid);
  if (proc === null || proc.startTimeTicks !== state.start_time_ticks) return null;
  if (proc.pid !== system.pid && !proc.cmdline.includes('supervise')) return null;
  return state;
}

/**
 * The state `status` shows: `failed` when the running supervisor gave up on an instance that is
 * not running (it should run and does not: counted as crashed, exit 32), else the inspected one.
 */
export function supervisedState(supervisor: SupervisorState | null, name: string, inspected: string): string {
  const supervised = supervisor?.instances[name];
  return supervised?.state === 'failed' && inspected !== 'running' ? 'failed' : inspected;
}

/** `supervised: 2 restarts; last: <reason> at <time>` for `status`, or null when no supervisor watches it. */
export function describeSupervision(supervisor: SupervisorState | null, name: string): string | null {
  const supervised = supervisor?.instances[name];
  // Nothing to say of one that runs as started: the table has it, and a thousand lines would hide the rest.
  if (supervised === undefined || (supervised.state === 'running' && supervised.restarts === 0 && supervised.last_reason === null)) return null;
  const restarts = `${supervised.restarts} restart${supervised.restarts === 1 ? '' : 's'} by the supervisor`;
  const state = supervised.state === 'running' ? '' : ` (${supervised.state}${supervised.next_attempt_at === null ? '' : `, next start at ${supervised.next_attempt_at}`})`;
  const last = supervised.last_reason === null ? '' : `; last: ${supervised.last_reason}${supervised.last_reason_at === null ? '' : ` at ${supervised.last_reason_at}`}`;
  return `supervised${state}: ${restarts}${last}`;
}
