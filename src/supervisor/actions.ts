// The supervisor's one door into the existing lifecycle (src/process/*, src/commands/lifecycle.ts):
// reading the declaration, taking the controller lock, reading the records under it, and
// starting, stopping, restarting, inspecting and pinging one instance exactly as the CLI does.
// Everything else in src/supervisor/ goes through here, so that a restructuring of the process
// layer changes only the call sites in this file.
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { posix as path } from 'node:path';
import type { CommandContext, Io } from '../cli/command.js';
import { FpmMultiError } from '../errors.js';
import type { FpmPool } from '../php-fpm/config/types.js';
import { POOL_PROBE_TIMEOUT_MS, pingPool as pingFpmPool } from '../php-fpm/pools.js';
import { testConfig, type ControlContext, type Outcome } from '../process/control.js';
import { restartWithHandover, withoutHandover } from '../process/handover.js';
import { inspectTarget } from '../process/inspect.js';
import { describeRestartRefusal } from '../process/restart.js';
import { startInstance } from '../process/start.js';
import { stopTarget } from '../process/stop.js';
import { refuseCollisions, type Preflight } from '../process/preflight.js';
import { afterStop, hasRecord, unhandled, type Target } from '../process/target.js';
import { ProcessTable } from '../process/terminate.js';
import { acquireLock, LOCK_WAIT_TIMEOUT_MS } from '../process/lock.js';
import { parseStat, readProcess } from '../process/proc.js';
import { recordPath, removeStartFailure, writeStartFailure } from '../process/record.js';
import { refuseRootRunDirectory, trustRunDirectory } from '../process/run-directory.js';
import { RECORD_MAX_BYTES, type System } from '../process/system.js';
import { chooseTargets } from '../process/choice.js';
import {
  loadDeclaration, readRunDirectoryRecords, resolveDeclarationFile, runDeclaredPreflight, type Declared,
} from '../process/declaration.js';
import { DEFAULT_START_TIMEOUT_S, DEFAULT_STOP_TIMEOUT_S } from '../model/instance.js';
import type { UsableInstance } from '../model/invocation.js';
import { readHeldMark, type HeldMark } from './marks.js';

export type { Declared, Outcome, Preflight };

/** What the supervisor knows of an instance: the lifecycle's target stays inside this module. */
export interface Supervisable {
  readonly name: string;
  /** The usable declared instance, or null (not declared, or declared with problems: `unusable`). */
  readonly instance: UsableInstance | null;
  readonly pools: readonly FpmPool[];
  readonly unusable: string | null;
  /** The lifecycle's own target (declaration, record, php-fpm facts): only this module looks inside. */
  readonly target: Target;
}

function wrap(target: Target): Supervisable {
  switch (target.kind) {
    case 'declared':
      return { name: target.name, instance: target.instance, pools: target.pools, unusable: null, target };
    case 'unusable':
      return { name: target.name, instance: null, pools: [], unusable: target.reason, target };
    case 'orphan':
    case 'launched':
      return { name: target.name, instance: null, pools: [], unusable: null, target };
    default:
      return unhandled(target);
  }
}

/** The same instance as if it had no record (a name the records no longer know). */
export function withoutRecord(supervisable: Supervisable): Supervisable {
  const { target } = supervisable;
  switch (target.kind) {
    case 'declared':
      return wrap(afterStop(target));
    case 'unusable':
      return wrap({ ...target, record: null });
    case 'orphan':
    case 'launched':
      return supervisable; // known by its record or intent alone: nothing else to forget
    default:
      return unhandled(target);
  }
}

/** The declared targets of `names` (their records are read under the lock, see withLock). */
export function declaredTargets(declared: Declared, names: readonly string[], preflightResult: Preflight | null): Supervisable[] {
  return chooseTargets(declared, { records: [], problems: [] }, names, 'selected-and-recorded', preflightResult).targets.map(wrap);
}

/** The supervisor's own start time (clock ticks since boot), for its state file. */
export async function ownStartTicks(system: System): Promise<number> {
  return (await readProcess(system, system.pid))?.startTimeTicks ?? 0;
}

/** What the supervisor acts with: the system, its output and the declaration's run directory. */
export interface ActionContext {
  system: System;
  io: Io;
  conf: string;
  runDir: string;
  /** PATH for php-fpm. */
  path: string | undefined;
}

/** The declaration file, read (never executed), as `start` reads it: an unusable file throws (exit 6). */
export function readDeclared(io: Io, conf: string): Declared {
  const context: CommandContext = { io, conf, json: false, selection: [], partial: false };
  return loadDeclaration(context, 'no-collisions');
}

/** What start refuses for each instance, and its php-fpm facts (pools, error log): read once, before the lock. */
export async function preflight(system: System, declared: Declared, names: readonly string[], pathVariable: string | undefined): Promise<Preflight | null> {
  return runDeclaredPreflight(system, declared, names, 'no-collisions', pathVariable);
}

/** Throws (exit 6) when enabled instances would collide, as `start` refuses the whole run. */
export function refuseCollidingDeclaration(preflightResult: Preflight | null): void {
  refuseCollisions({ collisions: preflightResult?.collisions ?? [] });
}

/** The run directory trusted (and created), as every mutating command does before its lock. */
export async function prepareRunDirectory(system: System, declared: Declared): Promise<void> {
  await refuseRootRunDirectory(system, declared.conf, declared.runDir, 'supervised');
  await trustRunDirectory(system, declared.runDir, true);
}

/** The targets of `names` as the records say under the lock (a record written by the CLI is seen). */
export interface LockedView {
  targets(names: readonly string[]): Promise<Supervisable[]>;
  control: ControlContext;
}

/** Long enough for a CLI command to finish starting and stopping what it holds. */
function lockWaitMs(declared: Declared): number {
  const longest = Math.max(
    (DEFAULT_START_TIMEOUT_S + DEFAULT_STOP_TIMEOUT_S) * 1000,
    ...(declared.model?.instances ?? []).map((instance) => instance.startTimeoutMs + instance.stopTimeoutMs),
  );
  return Math.max(LOCK_WAIT_TIMEOUT_MS, longest + LOCK_WAIT_TIMEOUT_MS);
}

/**
 * Runs `work` holding the controller lock, so that the supervisor and the CLI never act on an
 * instance at once; the records are read only under it. Never held while idle.
 */
export async function withLock<T>(ctx: ActionContext, declared: Declared, preflightResult: Preflight | null, work: (view: LockedView) => Promise<T>): Promise<T> {
  const lock = await acquireLock(ctx.system, path.join(ctx.runDir, 'lock'), { waitMs: lockWaitMs(declared) });
  try {
    const declaration = await resolveDeclarationFile(ctx.system, ctx.conf);
    const records = await readRunDirectoryRecords(ctx.system, ctx.runDir, declaration);
    const control: ControlContext = {
      system: ctx.system, runDir: ctx.runDir, path: ctx.path, conf: ctx.conf, declaration, records: records.records, processes: new ProcessTable(ctx.system),
    };
    const view: LockedView = {
      control,
      targets: async (names) => {
        if (names.length === 0) return [];
        const read = await readRunDirectoryRecords(ctx.system, ctx.runDir, declaration);
        // Recorded names are valid too: an instance removed from the file is stopped by its record.
        const known = new Set([...(declared.model?.instances ?? []).map((i) => i.name), ...read.records.map((r) => r.name)]);
        const wanted = names.filter((name) => known.has(name));
        if (wanted.length === 0) return [];
        // Names the records know are valid (an instance removed from the file is stopped by its record), as for `stop`.
        return chooseTargets(declared, read, wanted, 'everything-recorded', preflightResult).targets.map(wrap);
      },
    };
    return await work(view);
  } finally {
    await lock.release();
  }
}

/** What the supervisor needs of an inspection: does our master run, which one, is it recorded. */
export type MasterState =
  | { running: true; pid: number; startTicks: number; recorded: boolean }
  | { running: false; state: string };

/** The state of one instance, from its record, pidfile and /proc (never signals). */
export async function inspect(system: System, supervisable: Supervisable): Promise<MasterState> {
  const inspection = await inspectTarget(system, supervisable.target);
  if (inspection.state === 'running' || inspection.state === 'orphan') {
    return { running: true, pid: inspection.pid, startTicks: inspection.master.startTimeTicks, recorded: inspection.recorded };
  }
  return { running: false, state: inspection.state };
}

/** A stat line is a few hundred bytes; a comm of 64 and 52 numbers fit well within this. */
const STAT_BUFFER = Buffer.alloc(4096);
const STAT_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;

/**
 * Whether the master `pid` started at `startTicks` still runs (not a zombie, not a reused pid):
 * one bounded read of /proc/PID/stat into a fixed buffer. Synchronous and without promises on
 * purpose: the supervisor's poll runs it for every master five times a second (about 7 µs each),
 * which is most of its idle cost.
 */
export function isAlive(pid: number, startTicks: number): boolean {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, STAT_FLAGS);
  } catch {
    return false; // ENOENT: gone (the kernel lists only live processes and zombies)
  }
  try {
    const length = readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0);
    const stat = parseStat(STAT_BUFFER.toString('latin1', 0, length));
    return stat.state !== 'Z' && stat.state !== 'X' && stat.startTimeTicks === startTicks;
  } catch {
    return false; // ESRCH while reading: it exited in between
  } finally {
    closeSync(fd);
  }
}

/** A failure noted for `status`, as `start` does (removed by the next successful start or stop). */
async function remember(control: ControlContext, outcome: Outcome): Promise<Outcome> {
  if (outcome.ok) await removeStartFailure(control.system, control.runDir, outcome.name);
  else await writeStartFailure(control.system, control.runDir, outcome.name, { atMs: control.system.now(), message: outcome.message });
  return outcome;
}

function guardedOutcome(name: string, verb: string, error: unknown): Outcome {
  if (error instanceof FpmMultiError) return { name, ok: false, message: `not ${verb}: ${error.message}` };
  throw error;
}

/** `start` of one instance: config test, launch, verify, readiness; a crashed one's orphaned workers first. */
export async function startOne(control: ControlContext, supervisable: Supervisable): Promise<Outcome> {
  const { target } = supervisable;
  if (target.kind !== 'declared') return { name: target.name, ok: false, message: `not started: ${supervisable.unusable ?? 'it is no longer declared in the file'}` };
  try {
    return await remember(control, await startInstance(control, target));
  } catch (error) {
    return guardedOutcome(target.name, 'started', error);
  }
}

/** `stop` of one instance: graceful, identity verified before every signal. */
export async function stopOne(control: ControlContext, supervisable: Supervisable): Promise<Outcome> {
  const { target } = supervisable;
  // An unusable instance without a record was never started by this file: nothing to stop.
  if (target.kind === 'unusable' && !hasRecord(target)) return { name: target.name, ok: true, message: `not running (and unusable: ${target.reason})` };
  try {
    const outcome = await stopTarget(control, target);
    if (outcome.ok) await removeStartFailure(control.system, control.runDir, target.name);
    return outcome;
  } catch (error) {
    return guardedOutcome(target.name, 'stopped', error);
  }
}

/**
 * `restart` of one instance as the command does it: config test first (a broken config leaves it
 * running), what would make the start fail, then the socket hand-over, else stop and start.
 */
export async function restartOne(control: ControlContext, supervisable: Supervisable): Promise<{ outcome: Outcome; stopped: boolean }> {
  const { target } = supervisable;
  if (target.kind !== 'declared') return { outcome: { name: target.name, ok: false, message: `not restarted, left as it was: ${supervisable.unusable ?? 'not declared'}` }, stopped: false };
  try {
    const test = await testConfig(control, target.instance);
    if (!test.ok) return { outcome: { ...test, message: `not restarted, left as it was: ${test.message}` }, stopped: false };
    const refusal = await describeRestartRefusal(control, target);
    if (refusal !== null) return { outcome: { name: target.name, ok: false, message: `not restarted, left as it was: ${refusal}` }, stopped: false };
    const handed = await restartWithHandover(control, target);
    if (handed.kind === 'handed') return { outcome: await remember(control, handed.outcome), stopped: handed.outcome.ok };
    const stopped = await stopTarget(control, target);
    if (!stopped.ok) return { outcome: withoutHandover(stopped, handed), stopped: false };
    return { outcome: withoutHandover(await remember(control, await startInstance(control, afterStop(target))), handed), stopped: true };
  } catch (error) {
    return { outcome: guardedOutcome(target.name, 'restarted', error), stopped: false };
  }
}

/**
 * php-fpm's configuration error (FPM_EXIT_CONFIG, 78) from its config test or its launch: retrying
 * cannot help. The lifecycle reports it in words ("… exited with status 78"), read here.
 */
export function isConfigurationFailure(outcome: Outcome): boolean {
  return !outcome.ok && /exited with status 78\b/.test(outcome.message);
}

/** The held-down mark `stop` leaves (src/supervisor/marks.ts), or null. */
export function readHeld(system: System, runDir: string, name: string): Promise<HeldMark | null> {
  return readHeldMark(system, runDir, name);
}

/** Pings a pool with its ping.path as `health` does; throws a named FpmMultiError when it does not answer. */
export async function pingPool(system: System, pool: FpmPool): Promise<void> {
  await pingFpmPool(system, pool, POOL_PROBE_TIMEOUT_MS);
}

/** The pools of a target that have a ping.path (the others cannot be asked). */
export function pingablePools(supervisable: Supervisable): FpmPool[] {
  return supervisable.pools.filter((pool) => pool.pingPath !== null && pool.listen !== null);
}

/**
 * The master the record of `name` names, read alone (a rescan of held or failed instances reads
 * one small file, not every record), or null when there is none or it is unreadable.
 */
export async function readRecordedMaster(system: System, runDir: string, name: string): Promise<{ pid: number; startTimeTicks: number } | null> {
  try {
    const parsed = JSON.parse(await system.readFile(recordPath(runDir, name), { maxBytes: RECORD_MAX_BYTES, noFollow: true })) as Record<string, unknown>;
    const { pid, startTimeTicks } = parsed;
    return Number.isInteger(pid) && Number.isInteger(startTimeTicks) ? { pid: pid as number, startTimeTicks: startTimeTicks as number } : null;
  } catch {
    return null;
  }
}
