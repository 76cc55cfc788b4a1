// Reading php-fpm error logs for `logs`: the last lines of a file, read backwards from its end in
// bounded pieces (never the whole multi-GB log), and following several files at once the way
// `tail -F` does: across a rotation (the file renamed and a new one created: what was written to
// the old one before php-fpm reopened its log is read to its end, then the new file from its
// start) and across a truncation (read again from the start).
import { errnoCode } from '../errors.js';
import { describeErrno } from '../errors.js';
import { LOG_READ_CHUNK_BYTES, LOG_TAIL_MAX_BYTES, UnsafeFileError, type FileStat, type ReadableFile, type System } from './system.js';

const NEWLINE = 0x0a;

export interface Tail {
  /** Complete lines, oldest first, without their line feeds. */
  lines: string[];
  /** Bytes after the last line feed (a line php-fpm is still writing); empty when none. */
  partial: Buffer;
  /** Where the bytes read end: following continues from here. */
  end: number;
  /** True when fewer lines than asked were found within LOG_TAIL_MAX_BYTES of the end (the file has more). */
  capped: boolean;
}

function countNewlines(buffer: Buffer): number {
  let count = 0;
  for (let at = buffer.indexOf(NEWLINE); at !== -1; at = buffer.indexOf(NEWLINE, at + 1)) count += 1;
  return count;
}

/** Splits at line feeds: the complete lines, and what follows the last line feed. */
export function splitLines(buffer: Buffer): { lines: string[]; partial: Buffer } {
  const lines: string[] = [];
  let start = 0;
  for (let at = buffer.indexOf(NEWLINE); at !== -1; at = buffer.indexOf(NEWLINE, start)) {
    lines.push(buffer.toString('utf8', start, at));
    start = at + 1;
  }
  return { lines, partial: buffer.subarray(start) };
}

/**
 * The last `count` lines of `file`, reading backwards from its current end in pieces of
 * LOG_READ_CHUNK_BYTES, never further back than LOG_TAIL_MAX_BYTES.
 */
export async function readLastLines(file: ReadableFile, count: number, maxBytes = LOG_TAIL_MAX_BYTES): Promise<Tail> {
  const end = (await file.stat()).size;
  const pieces: Buffer[] = [];
  let start = end;
  let newlines = 0;
  // count + 1 line feeds: the bytes before the first one may be the end of an earlier line.
  while (start > 0 && end - start < maxBytes && (count === 0 ? false : newlines <= count)) {
    const size = Math.min(LOG_READ_CHUNK_BYTES, start, maxBytes - (end - start));
    const piece = await file.read(start - size, size);
    if (piece.length < size) break; // truncated meanwhile: what was read so far is the tail
    pieces.unshift(piece);
    start -= size;
    newlines += countNewlines(piece);
  }
  const bytes = Buffer.concat(pieces);
  const lastNewline = bytes.lastIndexOf(NEWLINE);
  // The bytes before the first line feed begin mid-line unless the read reached the file's start.
  const firstLine = start === 0 ? 0 : bytes.indexOf(NEWLINE) + 1;
  const complete = lastNewline === -1 || firstLine > lastNewline ? [] : splitLines(bytes.subarray(firstLine, lastNewline + 1)).lines;
  const partial = lastNewline === -1 ? (start === 0 ? bytes : Buffer.alloc(0)) : bytes.subarray(lastNewline + 1);
  const lines = count === 0 ? [] : complete.slice(-count);
  return { lines, partial, end, capped: start > 0 && lines.length < count };
}

/** What following reports besides lines: a rotation, a truncation, a file missing or refused (tail -F's messages). */
export type FollowNote = (name: string, message: string) => void;
export type LineSink = (name: string, line: string) => void;

/** An open file being read: where reading stands, and a line not yet ended. */
interface OpenLog {
  file: ReadableFile;
  identity: Pick<FileStat, 'dev' | 'ino'>;
  position: number;
  pending: Buffer;
  /** Rounds in a row that found nothing new (a replaced file is closed after RETIRED_QUIET_POLLS). */
  quietPolls: number;
}

/**
 * How many quiet rounds a replaced file is still read: php-fpm writes to it until it reopens its
 * log (logrotate's postrotate runs after the new file is created), and those lines count too.
 */
export const RETIRED_QUIET_POLLS = 5;

/** One followed log: the file at its path now, and replaced ones still read until they go quiet. */
export interface FollowedLog {
  name: string;
  path: string;
  current: OpenLog | null;
  retired: OpenLog[];
  /** The last problem noted about the path, so that each is said once, not every second. */
  noted: string | null;
}

export async function startFollowing(name: string, path: string, file: ReadableFile | null, tail: Tail | null): Promise<FollowedLog> {
  if (file === null) return { name, path, current: null, retired: [], noted: null };
  const { dev, ino } = await file.stat();
  return {
    name, path, retired: [], noted: null,
    current: { file, identity: { dev, ino }, position: tail?.end ?? 0, pending: tail?.partial ?? Buffer.alloc(0), quietPolls: 0 },
  };
}

function note(log: FollowedLog, message: string, say: FollowNote): void {
  if (log.noted === message) return;
  log.noted = message;
  say(log.name, message);
}

/** Reads what was appended to an open file since the last read, line by line (to its end, in bounded pieces). */
async function drain(log: FollowedLog, open: OpenLog, emit: LineSink, say: FollowNote): Promise<void> {
  const { file } = open;
  if ((await file.stat()).size < open.position) {
    say(log.name, `${log.path}: file truncated; reading it from its start`);
    open.position = 0;
    open.pending = Buffer.alloc(0);
  }
  open.quietPolls += 1;
  for (;;) {
    const piece = await file.read(open.position, LOG_READ_CHUNK_BYTES);
    if (piece.length === 0) return;
    open.quietPolls = 0;
    open.position += piece.length;
    const { lines, partial } = splitLines(Buffer.concat([open.pending, piece]));
    lines.forEach((line) => emit(log.name, line));
    // A "line" without a line feed longer than a tail's whole window is shown as it is, never hoarded.
    if (partial.length > LOG_TAIL_MAX_BYTES) {
      emit(log.name, partial.toString('utf8'));
      open.pending = Buffer.alloc(0);
    } else {
      open.pending = Buffer.from(partial);
    }
  }
}

/** Closes a replaced file; its last unfinished line is shown as it is. */
async function close(log: FollowedLog, open: OpenLog, emit: LineSink): Promise<void> {
  if (open.pending.length > 0) emit(log.name, open.pending.toString('utf8'));
  await open.file.close();
}

/**
 * One round of following: new lines of the open files, then the path looked at again. A new file
 * there (renamed away and created again by a rotation) is followed from its start; the old one is
 * read on until it stays quiet for RETIRED_QUIET_POLLS rounds (php-fpm writes to it until it
 * reopens its log). A missing path keeps the old file open until a new one appears. `open` is
 * how a new file is opened (logs: openLog's checks, on every reopen).
 */
export async function pollLog(
  system: Pick<System, 'stat' | 'openReadable'>, log: FollowedLog, emit: LineSink, say: FollowNote,
  open: (path: string) => Promise<ReadableFile> = (path) => system.openReadable(path),
): Promise<void> {
  for (const open of [...log.retired]) {
    await drain(log, open, emit, say);
    if (open.quietPolls >= RETIRED_QUIET_POLLS) {
      await close(log, open, emit);
      log.retired = log.retired.filter((other) => other !== open);
    }
  }
  if (log.current !== null) await drain(log, log.current, emit, say);
  let now: FileStat;
  try {
    now = await system.stat(log.path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined) throw error;
    note(log, code === 'ENOENT' ? `${log.path} does not exist (yet); waiting for it` : `${log.path}: ${describeErrno(error)}; waiting for it to become readable`, say);
    return;
  }
  if (log.current !== null && now.dev === log.current.identity.dev && now.ino === log.current.identity.ino) return;
  let next: ReadableFile;
  try {
    next = await open(log.path);
  } catch (error) {
    if (error instanceof UnsafeFileError) {
      note(log, `${error.message}: not followed`, say);
      return;
    }
    if (errnoCode(error) === undefined) throw error;
    note(log, `${log.path}: ${describeErrno(error)}; waiting for it to become readable`, say);
    return;
  }
  const opened = await next.stat();
  const replaced = log.current !== null;
  if (log.current !== null) log.retired.push(log.current);
  log.current = { file: next, identity: { dev: opened.dev, ino: opened.ino }, position: 0, pending: Buffer.alloc(0), quietPolls: 0 };
  log.noted = null;
  say(log.name, replaced ? `${log.path} has been replaced; following the new file` : `${log.path} appeared; following it`);
  await drain(log, log.current, emit, say);
}

/** Closes every followed file. */
export async function stopFollowing(logs: readonly FollowedLog[]): Promise<void> {
  for (const log of logs) {
    for (const open of [...log.retired, ...(log.current === null ? [] : [log.current])]) await open.file.close();
    log.retired = [];
    log.current = null;
  }
}
