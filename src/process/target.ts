// What a command can act on, as one discriminated union: a declared usable instance, a declared
// instance that cannot be used, or the record of an instance the file no longer declares (or that
// an unusable file cannot say anything about). Every command switches on `kind`.
import { posix as path } from 'node:path';
import type { UsableInstance } from '../model/invocation.js';
import type { FpmPool } from '../php-fpm/config/types.js';
import type { InstanceRecord, LaunchIntent } from './record.js';

/** A declared instance that can be acted on, with the record of what was started, if any. */
export interface DeclaredTarget {
  kind: 'declared';
  name: string;
  instance: UsableInstance;
  record: InstanceRecord | null;
  /**
   * The launch intent an interrupted start of it left (its controller died mid-launch), or null:
   * without a record, a master of that launch's window is found through it (see LaunchIntent).
   */
  intent: LaunchIntent | null;
  /** Why its record exists but cannot be read (a FIFO planted there); its state is then unknown unless its master is found. */
  recordProblem: string | null;
  /**
   * Whether its pidfile, without a record, proves a master it names this file's: only when it is
   * in the run directory, where only this file's launches write. A pidfile elsewhere (pidfile=)
   * may be another declaration file's or a php-fpm's started by hand.
   */
  pidfileProves: boolean;
  /**
   * Whether the record's pidfile lies in the run directory, so that a master started after the
   * recorded one that it names is that master's successor (a reload made outside the
   * controller). Left out: `pidfileProves` with the record's pidfile the declared one.
   */
  recordPidfileProves?: boolean;
  /** php-fpm's error log file, for failure messages; null for syslog, unknown or not read. */
  errorLog: string | null;
  /** Its php-fpm pools; [] when the command did not read its php-fpm config. */
  pools: FpmPool[];
}

/** A declared instance with problems (or refused by the preflight): only its record can be acted on. */
export interface UnusableTarget {
  kind: 'unusable';
  name: string;
  /** The pidfile to look at (to tell "stopped" from "unknown"); null when unknown. */
  pidfile: string | null;
  /** Why it cannot be acted on. */
  reason: string;
  record: InstanceRecord | null;
  /** As DeclaredTarget's: whether its pidfile is in the run directory. */
  pidfileProves: boolean;
  /** As DeclaredTarget's; left out: `pidfileProves`. */
  recordPidfileProves?: boolean;
}

/** A record alone: of an instance no longer declared, or of any instance when the file is unusable. */
export interface OrphanTarget {
  kind: 'orphan';
  name: string;
  record: InstanceRecord;
  /**
   * 'undeclared': the file no longer declares it. 'file-unusable': nobody knows what the file
   * declares, so the record counts as declared (status names it `running`, not `orphan`).
   */
  why: 'undeclared' | 'file-unusable';
  /** As DeclaredTarget's; left out: false (a successor is never taken without proof). */
  recordPidfileProves?: boolean;
}

/**
 * The launch intent alone (no record) of an instance no longer declared, or of any instance when
 * the file is unusable: a controller died mid-start, and the master of that launch may still run.
 * It stands for a record: status lists it, stop reaches it by name and without names.
 */
export interface LaunchedTarget {
  kind: 'launched';
  name: string;
  intent: LaunchIntent;
  why: 'undeclared' | 'file-unusable';
}

export type Target = DeclaredTarget | UnusableTarget | OrphanTarget | LaunchedTarget;

/** For a `never` default: the compiler proves every kind was handled. */
export function unhandled(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}

/** Whether the target counts as declared (status counts it; a running master is `running`, not `orphan`). */
export function isCountedAsDeclared(target: Target): boolean {
  return (target.kind !== 'orphan' && target.kind !== 'launched') || target.why === 'file-unusable';
}

/** The pidfile the declaration names, else the record's (status shows it). */
export function pidfileOf(target: Target): string | null {
  switch (target.kind) {
    case 'declared':
      return target.instance.pidfile;
    case 'unusable':
      return target.pidfile;
    case 'orphan':
      return target.record.pidfile;
    case 'launched':
      return target.intent.pidfile;
    default:
      return unhandled(target);
  }
}

/** An unusable instance with a record: what was started can still be stopped by its record. */
export type RecordedUnusableTarget = UnusableTarget & { record: InstanceRecord };

export function hasRecord(target: UnusableTarget): target is RecordedUnusableTarget {
  return target.record !== null;
}

/**
 * The target as a successful stop leaves it: without a record or launch intent (stop removed them), so that a start
 * that follows (restart) does not take the master the old record names, now gone, for a crash.
 */
export function afterStop(target: DeclaredTarget): DeclaredTarget {
  // Its launch intent, if it had one, served too: stop removed it with the master it found.
  return { ...target, record: null, intent: null };
}

/** Whether `pidfile` lies in `runDir`: only this declaration file's launches write there. */
export function isInRunDirectory(pidfile: string | null, runDir: string): boolean {
  return pidfile !== null && path.dirname(path.normalize(pidfile)) === path.normalize(runDir);
}
