// What the controller started, kept in the run directory: so that `stop` still reaches an
// instance removed from the declaration file, `status` can tell "crashed" from "stopped", and a
// recycled pid is never mistaken for our master (the start time must match).
import { posix as path } from 'node:path';
import { isLaunchSettings, type LaunchSettings } from './switch.js';
import { errnoCode, RECORD_MAX_BYTES, START_FAILURE_MAX_BYTES, type System } from './system.js';

export interface InstanceRecord {
  name: string;
  /** Real path of the php-fpm program, as /proc/PID/exe shows it. */
  binary: string;
  /** The config path exactly as passed to --fpm-config (php-fpm puts it in its title). */
  config: string;
  pidfile: string;
  pid: number;
  /** The master's start time in clock ticks since boot (/proc/PID/stat field 22). */
  startTimeTicks: number;
  /**
   * The uid the master runs as (the controller's when it started it). Absent in records written
   * before it was kept: then the reading controller's own uid is expected.
   */
  uid?: number;
  /**
   * Written (atomically) just before the first signal of a stop: if the controller dies
   * mid-stop, a master found gone later was stopped, not crashed.
   */
  stopping?: boolean;
  /**
   * The controller-owned path php-fpm was launched through (src/process/switch.ts): a symlink to
   * `binary` that a reload re-executes. Absent for masters launched directly (before it existed,
   * or adopted): those cannot switch binaries live.
   */
  launchPath?: string;
  /** What the launch gave php-fpm that a reload keeps (arguments, environment, nice): absent when unknown. */
  launched?: LaunchSettings;
  /**
   * The real path of the declaration file whose command wrote it. A record of another file found
   * in this file's run directory (two files sharing one) is never acted on, only reported.
   * Absent in records written before it was kept: then taken as the reading file's own, for an
   * upgrade must not orphan the instances that run.
   */
  declaration?: string;
}

const RECORD_SUFFIX = '.record.json';
const RECORD_MODE = 0o644;

export function recordPath(runDir: string, name: string): string {
  return path.join(runDir, `${name}${RECORD_SUFFIX}`);
}

function isRecord(value: unknown): value is InstanceRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r['name'] === 'string' && typeof r['binary'] === 'string' && typeof r['config'] === 'string' &&
    typeof r['pidfile'] === 'string' && Number.isInteger(r['pid']) && (r['pid'] as number) > 1 &&
    Number.isInteger(r['startTimeTicks']) &&
    (r['uid'] === undefined || (Number.isInteger(r['uid']) && (r['uid'] as number) >= 0)) &&
    (r['stopping'] === undefined || typeof r['stopping'] === 'boolean') &&
    (r['launchPath'] === undefined || typeof r['launchPath'] === 'string') &&
    (r['launched'] === undefined || isLaunchSettings(r['launched'])) &&
    (r['declaration'] === undefined || typeof r['declaration'] === 'string')
  );
}

/** What the run directory holds of the instances this declaration file started. */
export interface RunDirectoryState {
  records: InstanceRecord[];
  /** Launches whose controller did not live to finish them (see LaunchIntent). */
  intents: LaunchIntent[];
  /** One line per file that could not be read: reported, never trusted. */
  problems: string[];
  /** The names whose record exists but cannot be read: their state is unknown, not "stopped". */
  unreadable: Map<string, string>;
  /**
   * Records and launch intents another declaration file wrote here (name → why): never acted
   * on, reported; `check` refuses the run directory.
   */
  foreign: Map<string, string>;
}

/** Whether a record or launch intent was written by `file`'s commands (one without a file: yes, see InstanceRecord). */
export function isOfDeclaration(written: { declaration?: string }, file: string | undefined): boolean {
  return file === undefined || written.declaration === undefined || written.declaration === file;
}

/** Why a record of another declaration file is never acted on, with the fix. */
export function describeForeign(file: string, declaration: string | undefined, entry: string): string {
  return `${file} belongs to ${declaration ?? 'another declaration file'}, not ${entry}: two declaration files share this run directory; give each its own FPM_run_dir`;
}

/**
 * Every readable record and launch intent in the run directory; an unreadable one is reported,
 * not trusted. With `declaration` (the reading file's real path), those another file wrote are
 * set apart in `foreign`.
 */
export async function readRecords(system: System, runDir: string, declaration?: string): Promise<RunDirectoryState> {
  let names: string[];
  try {
    names = await system.readdir(runDir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { records: [], intents: [], problems: [], unreadable: new Map(), foreign: new Map() };
    throw error;
  }
  const records: InstanceRecord[] = [];
  const problems: string[] = [];
  const unreadable = new Map<string, string>();
  const foreign = new Map<string, string>();
  for (const entry of names.filter((n) => n.endsWith(RECORD_SUFFIX)).sort()) {
    const file = path.join(runDir, entry);
    const name = entry.slice(0, -RECORD_SUFFIX.length);
    try {
      const parsed: unknown = JSON.parse(await system.readFile(file, { maxBytes: RECORD_MAX_BYTES, noFollow: true }));
      if (isRecord(parsed) && `${parsed.name}${RECORD_SUFFIX}` === entry) {
        if (isOfDeclaration(parsed, declaration)) records.push(parsed);
        else foreign.set(name, describeForeign(file, parsed.declaration, declaration ?? ''));
      }
      else {
        problems.push(`${file}: not a php-fpm-multi record; remove it if no php-fpm of that instance runs`);
        unreadable.set(name, `its record ${file} is unreadable (not a php-fpm-multi record); remove it if no php-fpm of that instance runs`);
      }
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue; // removed by a concurrent stop
      const why = error instanceof Error ? error.message : String(error);
      problems.push(`${file}: unreadable (${why}); remove it if no php-fpm of that instance runs`);
      unreadable.set(name, `its record ${file} is unreadable (${why}); remove it if no php-fpm of that instance runs`);
    }
  }
  const intents: LaunchIntent[] = [];
  for (const entry of names.filter((n) => n.endsWith(LAUNCH_SUFFIX)).sort()) {
    const intent = await readLaunchIntent(system, runDir, entry.slice(0, -LAUNCH_SUFFIX.length));
    if (intent === null) continue;
    if (isOfDeclaration(intent, declaration)) intents.push(intent);
    else if (!foreign.has(intent.name)) foreign.set(intent.name, describeForeign(path.join(runDir, entry), intent.declaration, declaration ?? ''));
  }
  return { records, intents, problems, unreadable, foreign };
}

export async function writeRecord(system: System, runDir: string, record: InstanceRecord): Promise<void> {
  await system.writeFileAtomic(recordPath(runDir, record.name), `${JSON.stringify(record)}\n`, RECORD_MODE);
}

export async function removeRecord(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.unlink(recordPath(runDir, name));
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

/**
 * A launch in progress, written before php-fpm is run and removed once its outcome is known
 * (record written, or what it left stopped). If the controller dies meanwhile, the next start
 * finds it: a master of this binary, config and owner that started within the launch's window
 * (after `launchTicks`, before `deadlineTicks`) was brought up by that launch, and is adopted.
 */
export interface LaunchIntent {
  name: string;
  binary: string;
  config: string;
  pidfile: string;
  uid: number;
  /** /proc/uptime in clock ticks just before the launch: its master started at or after it. */
  launchTicks: number;
  /** The launcher is killed at start_timeout: a master it forked started before this. */
  deadlineTicks: number;
  /** As InstanceRecord's: the declaration file whose start wrote it (absent: written before it was kept). */
  declaration?: string;
}

const LAUNCH_SUFFIX = '.launch.json';

export function launchIntentPath(runDir: string, name: string): string {
  return path.join(runDir, `${name}${LAUNCH_SUFFIX}`);
}

export async function writeLaunchIntent(system: System, runDir: string, intent: LaunchIntent): Promise<void> {
  await system.writeFileAtomic(launchIntentPath(runDir, intent.name), `${JSON.stringify(intent)}\n`, RECORD_MODE);
}

/** The intent of an interrupted launch, or null (none, or not one of ours: then it proves nothing). */
export async function readLaunchIntent(system: System, runDir: string, name: string): Promise<LaunchIntent | null> {
  try {
    const r = JSON.parse(await system.readFile(launchIntentPath(runDir, name), { maxBytes: RECORD_MAX_BYTES, noFollow: true })) as Record<string, unknown>;
    const ok = typeof r === 'object' && r !== null && r['name'] === name && typeof r['binary'] === 'string' &&
      typeof r['config'] === 'string' && typeof r['pidfile'] === 'string' && Number.isInteger(r['uid']) &&
      Number.isInteger(r['launchTicks']) && Number.isInteger(r['deadlineTicks']) &&
      (r['declaration'] === undefined || typeof r['declaration'] === 'string');
    return ok ? (r as unknown as LaunchIntent) : null;
  } catch {
    return null;
  }
}

export async function removeLaunchIntent(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.unlink(launchIntentPath(runDir, name));
  } catch {
    // ENOENT: none. Anything else (EROFS): it only widens what a later start may adopt, and only
    // within its launch window; never worth failing the outcome that is being reported.
  }
}

/** Why the last start of an instance failed: `status` shows it until a start or stop succeeds. */
export interface StartFailure {
  atMs: number;
  message: string;
}

const FAILURE_SUFFIX = '.failure.json';

function failurePath(runDir: string, name: string): string {
  return path.join(runDir, `${name}${FAILURE_SUFFIX}`);
}

/**
 * Best effort: the failure itself is reported on stderr; a run directory that is full or
 * read-only (ENOSPC, EROFS) must not turn one instance's failure into an abort of the command.
 */
export async function writeStartFailure(system: System, runDir: string, name: string, failure: StartFailure): Promise<void> {
  try {
    await system.writeFileAtomic(failurePath(runDir, name), `${JSON.stringify(failure)}\n`, RECORD_MODE);
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}

export async function readStartFailure(system: System, runDir: string, name: string): Promise<StartFailure | null> {
  try {
    const parsed: unknown = JSON.parse(await system.readFile(failurePath(runDir, name), { maxBytes: START_FAILURE_MAX_BYTES, noFollow: true }));
    const failure = parsed as Partial<StartFailure>;
    return typeof failure.atMs === 'number' && typeof failure.message === 'string' ? { atMs: failure.atMs, message: failure.message } : null;
  } catch {
    return null; // none, or unreadable: it is only an explanation
  }
}

/** Best effort, as writeStartFailure: a stale explanation is not worth failing a stop or start. */
export async function removeStartFailure(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.unlink(failurePath(runDir, name));
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}
