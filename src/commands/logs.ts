// logs: the tail of each selected instance's php-fpm error_log, found in its configuration (read
// as php-fpm reads it), prefixed with the instance's name when several are shown; --follow keeps
// reading all of them at once, across log reopening, rotation and truncation (src/process/log-tail.ts).
// It only reads: no lock, no records, no signal.
import type { CommandContext, Io } from '../cli/command.js';
import { formatLine, reportWarning } from '../cli/reporter.js';
import { describeErrno, NotConfiguredError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { chooseRunDirUid, loadModel } from '../model/load.js';
import type { Model } from '../model/instance.js';
import { selectInstances } from '../model/selection.js';
import { describeSyslog, type LogLocation } from '../php-fpm/log.js';
import { resolveAccount } from '../process/account.js';
import { openLog } from '../process/log-access.js';
import { locateInstanceLog } from '../process/log-location.js';
import {
  pollLog, readLastLines, startFollowing, stopFollowing, type FollowedLog, type Tail,
} from '../process/log-tail.js';
import { errnoCode, LOG_TAIL_MAX_BYTES, UnsafeFileError, type ReadableFile, type System } from '../process/system.js';

/** `logs` without -n shows as many lines as tail does. */
export const DEFAULT_LOG_LINES = 10;
/** How often --follow looks for new lines and a replaced file: tail -F's default interval. */
export const FOLLOW_POLL_INTERVAL_MS = 1000;

/** One log file and the instances that write to it (several when their configs share one). */
export interface LogSource {
  /** What its lines are prefixed with: the instance's name, or the names sharing the file joined by commas. */
  label: string;
  path: string;
  /** The uids of those instances' `user=` accounts: besides root and the controller, who may own the file (src/process/log-access.ts). */
  userUids: readonly number[];
}

/**
 * Control characters of C0 except TAB, DEL and C1: a log line is written by PHP code from any
 * request, and an escape sequence (a title, a colour, a cursor move, a clipboard write) or a NUL
 * must not reach the terminal of whoever reads it, often root.
 */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** A line as it is shown: every control character but TAB written as `\xNN` (ESC as `\x1b`), as in C and bash's $'…'. */
export function escapeLogLine(line: string): string {
  return line.replace(CONTROL_CHARACTERS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** `web: <line>` when several instances are shown; the line alone for one; control characters escaped. */
export function formatLogLine(label: string, line: string, prefixed: boolean): string {
  return prefixed ? `${label}: ${escapeLogLine(line)}\n` : `${escapeLogLine(line)}\n`;
}

/**
 * The files to read, in the order of the instances: instances whose configs resolve to the same
 * file share one source (its lines shown once, labelled with all their names), and are warned about.
 */
export function groupLogFiles(located: readonly { name: string; location: LogLocation; userUid?: number | null }[]): { sources: LogSource[]; shared: string[] } {
  const byPath = new Map<string, string[]>();
  const usersByPath = new Map<string, number[]>();
  for (const { name, location, userUid } of located) {
    if (location.kind !== 'file') continue;
    byPath.set(location.path, [...(byPath.get(location.path) ?? []), name]);
    usersByPath.set(location.path, [...(usersByPath.get(location.path) ?? []), ...(userUid === undefined || userUid === null ? [] : [userUid])]);
  }
  const sources = [...byPath].map(([path, names]) => ({ label: names.join(','), path, userUids: usersByPath.get(path) ?? [] }));
  const shared = [...byPath].filter(([, names]) => names.length > 1).map(
    ([path, names]) => `instances ${names.join(', ')} all log to ${path}, so their lines are mixed there: give each instance its own error_log in the [global] section of its php-fpm config`,
  );
  return { sources, shared };
}

/** The model, or why logs cannot find any log without it. */
function loadLogsModel(io: Io, conf: string): Model {
  const why = 'logs finds each instance\'s error_log in the php-fpm config that the declaration names, so it needs a usable declaration file';
  let model: Model;
  try {
    model = loadModel(io.system, conf, io.env, chooseRunDirUid(io.system, conf));
  } catch (error) {
    if (error instanceof NotConfiguredError) throw new NotConfiguredError(`${error.message}\n(${why})`);
    throw error;
  }
  if (model.problems.length > 0) {
    throw new NotConfiguredError(`${conf} is unusable (${why}):\n  ${model.problems.join('\n  ')}\nFix it and run php-fpm-multi check.`);
  }
  return model;
}

/** Why a log file cannot be opened, with the fix. */
function describeOpenFailure(system: System, source: LogSource, error: unknown): string {
  if (error instanceof UnsafeFileError && error.reason === 'untrusted') {
    return `${source.label}: error_log ${error.message}: not read; point error_log at a file in a directory only root (or the instance's user=) can write, such as /var/log/php-fpm-multi`;
  }
  if (error instanceof UnsafeFileError) return `${source.label}: error_log ${error.message}: not read; point error_log at a regular file`;
  const code = errnoCode(error);
  if (code === 'ENOENT') {
    return `${source.label}: error_log ${source.path} does not exist (yet): php-fpm creates it when the instance starts; if the instance runs, php-fpm could not reopen it (after a rotation, say): php-fpm-multi check tells why, and the rotated file (${source.path}.1) holds its last lines`;
  }
  if (code === 'EACCES' && system.uid !== 0) return `${source.label}: error_log ${source.path}: ${describeErrno(error)}: run as root, or as the user php-fpm writes it as`;
  return `${source.label}: error_log ${source.path}: ${describeErrno(error)}`;
}

export interface ShowOptions {
  lines: number;
  follow: boolean;
  /** Asked after every round of following: true ends it (SIGINT, SIGTERM; a test's condition). */
  shouldStop: () => boolean;
  pollIntervalMs?: number;
}

/**
 * Prints the last lines of every source, then (follow) every new line until shouldStop. Returns
 * the sources that could not be read (each named on stderr).
 */
export async function showLogs(system: System, io: Pick<Io, 'stdout' | 'stderr'>, sources: readonly LogSource[], prefixed: boolean, options: ShowOptions): Promise<number> {
  const emit = (label: string, line: string): void => io.stdout(formatLogLine(label, line, prefixed));
  const say = (label: string, message: string): void => io.stderr(formatLine(prefixed ? `${label}: ${message}` : message));
  const followed: FollowedLog[] = [];
  let failures = 0;
  try {
    for (const source of sources) {
      let file: ReadableFile | null = null;
      let tail: Tail | null = null;
      const open = (path: string): Promise<ReadableFile> => openLog(system, path, { controllerUid: system.uid, userUids: source.userUids });
      try {
        file = await open(source.path);
        tail = await readLastLines(file, options.lines);
      } catch (error) {
        if (!(error instanceof UnsafeFileError) && errnoCode(error) === undefined) throw error;
        await file?.close();
        file = null;
        // Following waits for a missing file, as tail -F does; anything else is not followed.
        if (options.follow && errnoCode(error) === 'ENOENT') say(source.label, `${source.path} does not exist (yet); waiting for it`);
        else {
          io.stderr(formatLine(describeOpenFailure(system, source, error)));
          failures += 1;
          continue;
        }
      }
      if (tail !== null) {
        if (tail.capped) say(source.label, `only the last ${LOG_TAIL_MAX_BYTES / 1024 / 1024} MiB of ${source.path} were read, which hold ${tail.lines.length} lines`);
        for (const line of tail.lines) emit(source.label, line);
        // A line php-fpm is still writing: shown now, or (following) once it is complete.
        if (!options.follow && tail.partial.length > 0) emit(source.label, tail.partial.toString('utf8'));
      }
      if (options.follow) followed.push(await startFollowing(source.label, source.path, file, tail));
      else await file?.close();
    }
    if (!options.follow || followed.length === 0) return failures;
    const userUids = new Map(sources.map((source) => [source.label, source.userUids]));
    while (!options.shouldStop()) {
      await system.sleep(options.pollIntervalMs ?? FOLLOW_POLL_INTERVAL_MS);
      for (const log of followed) {
        await pollLog(system, log, emit, say, (path) => openLog(system, path, { controllerUid: system.uid, userUids: userUids.get(log.name) ?? [] }));
      }
    }
    return failures;
  } finally {
    await stopFollowing(followed);
  }
}

/** Ends --follow on SIGINT and SIGTERM with exit 0, its files closed (the handlers are removed afterwards). */
function stopOnSignals(): { stopped: () => boolean; release: () => void } {
  let stop = false;
  const listener = (): void => {
    stop = true;
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return {
    stopped: () => stop,
    release: () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    },
  };
}

export async function logs(context: CommandContext): Promise<number> {
  const { io, conf, selection } = context;
  const lines = context.lines ?? DEFAULT_LOG_LINES;
  const follow = context.follow === true;
  const model = loadLogsModel(io, conf);
  const selected = selectInstances(model.instances, selection);
  if (selected.length === 0) throw new NotConfiguredError(`${conf} declares no enabled instance, so there is no log to show; name one (php-fpm-multi list shows them all)`);
  const located = [];
  let failures = 0;
  for (const instance of selected) {
    const location = await locateInstanceLog(io.system, instance, io.env['PATH']);
    // Who besides root may own its log: its user= account (an unresolvable one: nobody).
    const account = await resolveAccount(io.system, instance);
    const userUid = account.kind === 'resolved' ? account.runAs.uid : null;
    if (location.kind === 'syslog') io.stderr(formatLine(`${instance.name}: ${describeSyslog(location.ident, location.facility)}`));
    if (location.kind === 'unknown') {
      io.stderr(formatLine(`${instance.name}: cannot tell where it logs: ${location.why}`));
      failures += 1;
    }
    located.push({ name: instance.name, location, userUid });
  }
  const { sources, shared } = groupLogFiles(located);
  for (const warning of shared) reportWarning(io, warning);
  const signals = follow ? stopOnSignals() : null;
  try {
    failures += await showLogs(io.system, io, sources, selected.length > 1, { lines, follow, shouldStop: signals?.stopped ?? (() => true) });
  } finally {
    signals?.release();
  }
  return failures > 0 ? EXIT_FAILURE : EXIT_OK;
}
