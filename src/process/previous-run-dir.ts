// The previous run directory of a declaration file, for stop and status: the one its last start
// used (src/process/last-run-dir.ts) when the file is unusable or FPM_run_dir changed since, what
// it holds of this file, and the targets found there.
import type { CommandContext } from '../cli/command.js';
import { FpmMultiError } from '../errors.js';
import { chooseRunDirUid } from '../model/load.js';
import { defaultRunDir } from '../model/build.js';
import { trustRunDirectory } from './run-directory.js';
import type { Target } from './target.js';
import { readLastRunDir } from './last-run-dir.js';
import { posix as path } from 'node:path';
import type { System } from './system.js';
import { chooseTargets, type TargetChoice } from './choice.js';
import { holdsControllerState, namesIn, readRunDirectoryRecords, type Declared, type RecordsRead } from './declaration.js';

/** A run directory of this file other than the one it names now: the one its last start used. */
export interface PreviousRunDir {
  runDir: string;
  /** Why it is looked at: the file is unusable, or FPM_run_dir changed. */
  why: string;
  /**
   * The file's default run directory looked at without a pointer (FPM_run_dir set since its
   * instances started there): only records that name this file count, for a record without a file
   * there may be another file's of the same name.
   */
  strict?: boolean;
}

/**
 * For stop and status: the run directory the file's last start remembered (src/process/last-run-dir.ts)
 * when it is not the one the file names now (or the file is unusable); null otherwise.
 */
export async function findPreviousRunDir(system: System, context: CommandContext, declared: Declared, file: string): Promise<PreviousRunDir | null> {
  const defaultDir = defaultRunDir(declared.conf, context.io.env, chooseRunDirUid(system, declared.conf));
  if (defaultDir === null) return null;
  const last = await readLastRunDir(system, defaultDir, file);
  // No pointer, or one naming the run directory the file names now (left by a start with that
  // FPM_run_dir before a start without it, which writes none): instances may run from the default one.
  const pointsElsewhere = last !== null && last !== path.normalize(declared.runDir);
  if (!pointsElsewhere && declared.unusable === null && path.normalize(defaultDir) !== path.normalize(declared.runDir)) {
    // FPM_run_dir set while instances started without it run: they are recorded in the default one.
    return { runDir: path.normalize(defaultDir), why: `FPM_run_dir changed while instances run (they were started in the default run directory ${defaultDir}; the file now names ${declared.runDir})`, strict: true };
  }
  if (last === null || !pointsElsewhere) return null;
  const why = declared.unusable !== null
    ? `${declared.conf} is unusable, and its last start used ${last}`
    : `FPM_run_dir changed while instances run (its last start used ${last}; the file now names ${declared.runDir})`;
  return { runDir: last, why };
}

/**
 * An unusable file and no record of it anywhere: what runs cannot be told (status exits 4, stop
 * fails), never "nothing runs" (tryout 2 finding 3).
 */
export function describeNothingRecorded(declared: Declared, previous: PreviousRunDir | null): string {
  const where = previous === null ? declared.runDir : `${declared.runDir} nor ${previous.runDir}`;
  return `cannot tell what runs: ${declared.conf} is unusable and no records were found (in ${where}); ` +
    `fix the file (php-fpm-multi check says what is wrong), then run the command again`;
}

/** The warning when records of this file are found in its previous run directory. */
export function describePreviousRunDir(previous: PreviousRunDir, names: readonly string[]): string {
  return `records of ${names.join(', ')} are in ${previous.runDir}: ${previous.why}; acting on them there`;
}

/**
 * The targets of this file's previous run directory: only what is recorded there (the declared
 * instances are the main run directory's), valid names of both directories accepted.
 */
export function choosePreviousTargets(
  declared: Declared, previous: PreviousRunDir, read: RecordsRead, selection: readonly string[], choice: TargetChoice, mainNames: readonly string[],
): Target[] {
  const recorded = new Set(namesIn(read));
  if (recorded.size === 0) return [];
  return chooseTargets({ ...declared, runDir: previous.runDir }, read, selection, choice, null, mainNames).targets.filter((target) => recorded.has(target.name));
}

/** The previous run directory of this file and what it holds of it (trust checked first); null when there is none. */
export async function readPreviousRunDir(
  system: System, context: CommandContext, declared: Declared, file: string,
): Promise<{ previous: PreviousRunDir; read: RecordsRead; problems: string[]; used: boolean } | null> {
  const previous = await findPreviousRunDir(system, context, declared, file);
  if (previous === null) return null;
  try {
    if (!(await trustRunDirectory(system, previous.runDir, false))) return null;
    const all = await readRunDirectoryRecords(system, previous.runDir, file);
    if (previous.strict === true) {
      // Only what names this file; nothing else there is reported either (it is the directory of every file of this name).
      const named = (written: { declaration?: string }): boolean => written.declaration === file;
      const read = { records: all.records.filter(named), intents: (all.intents ?? []).filter(named), problems: [] };
      return read.records.length + read.intents.length === 0 ? null : { previous, read, problems: [], used: true };
    }
    const read = all;
    return { previous, read, problems: [...read.problems, ...(read.foreign?.values() ?? [])], used: await holdsControllerState(system, previous.runDir) };
  } catch (error) {
    if (!(error instanceof FpmMultiError)) throw error;
    if (previous.strict === true) return null; // only looked at in case: nothing proves a record of this file is there
    // Its last run directory cannot be trusted now: said, and only FPM_run_dir's records are used.
    return { previous, read: { records: [], problems: [] }, problems: [`${previous.why}, but it cannot be read: ${error.message}`], used: false };
  }
}

/**
 * A declared instance with nothing recorded in the run directory the file names now, while its
 * previous run directory holds its record: the previous one is what runs (or ran), so it alone
 * stands for the instance.
 */
export function withoutShadowed(targets: readonly Target[], previous: readonly Target[]): Target[] {
  const elsewhere = new Set(previous.map((target) => target.name));
  return targets.filter((target) => !(elsewhere.has(target.name) && target.kind === 'declared' && target.record === null && target.intent === null));
}
