// Reading files others may be able to write: one bounded, checked primitive for every file the
// controller reads (the declaration, php-fpm configs and their includes, records, pidfiles, the
// lock's pid, /proc). A FIFO would block the open or the read forever, /dev/zero never ends, a
// huge file exhausts memory: each is refused with the path and what it is, before it is read.
// src/process/system.ts serves it to everything else as System.readFile and System.readFileBytes.

import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { FpmMultiError } from '../errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;
/** The declaration file (`--conf`): a thousand instances take about 100 KiB. */
export const DECLARATION_MAX_BYTES = 1 * MIB;
/** Each php-fpm config file, the main one and each included one. */
export const FPM_CONFIG_MAX_BYTES = 1 * MIB;
/** `<name>.record.json`: a few paths and numbers. */
export const RECORD_MAX_BYTES = 64 * KIB;
/** `<name>.failure.json`: php-fpm's last lines of output, quoted. */
export const START_FAILURE_MAX_BYTES = 1 * MIB;
/** A pidfile, and the lock file's pid: a decimal number; a bit more, so that a message can quote it. */
export const PIDFILE_MAX_BYTES = 4 * KIB;
/** What php-fpm added to its error log during one operation. */
export const ERROR_LOG_TAIL_MAX_BYTES = 1 * MIB;
/**
 * /proc files (stat, cmdline, /proc/stat). They report st_size 0, so they are read up to this in
 * a loop; the largest, a cmdline, is bounded by the kernel's argument limit (ARG_MAX, at most
 * 6 MiB with the largest stack limit it honours).
 */
export const PROC_FILE_MAX_BYTES = 8 * MIB;

export interface ReadLimits {
  /** More than this is refused (never truncated): UnsafeFileError with the size found. */
  maxBytes: number;
  /**
   * Refuse a symlink as the last component (O_NOFOLLOW): for the files the controller writes
   * itself in a trusted directory (records, pidfiles, the lock). The declaration and php-fpm
   * configs may be symlinks: they are followed, and what they lead to must be a regular file.
   */
  noFollow?: boolean;
  /** Start reading here (bytes); the limit applies to what follows. For a log's new lines. */
  offset?: number;
  /**
   * The file is in /proc, which holds no device nodes: the path is not looked at before the open
   * (the open descriptor still is). That saves a stat per read, a quarter of its cost (about
   * 9 instead of 12 µs for /proc/self/stat, as fast as readFileSync); `status` reads hundreds.
   */
  procfs?: boolean;
}

/** A log's tail, read backwards from its end in pieces of at most this (src/process/log-tail.ts). */
export const LOG_READ_CHUNK_BYTES = 64 * KIB;
/** How far back `logs -n` reads at most: more lines than fit are not looked for (never the whole multi-GB log). */
export const LOG_TAIL_MAX_BYTES = 1 * MIB;

/** What a file is, as a message says it: "a FIFO". */
function describeFileType(mode: number): string {
  switch (mode & fsConstants.S_IFMT) {
    case fsConstants.S_IFIFO: return 'a FIFO';
    case fsConstants.S_IFCHR: return 'a character device';
    case fsConstants.S_IFBLK: return 'a block device';
    case fsConstants.S_IFSOCK: return 'a socket';
    case fsConstants.S_IFDIR: return 'a directory';
    case fsConstants.S_IFLNK: return 'a symlink';
    default: return 'not a plain file';
  }
}

function formatBytes(bytes: number): string {
  if (bytes >= MIB) return `${Number((bytes / MIB).toFixed(1))} MiB`;
  if (bytes >= KIB) return `${Number((bytes / KIB).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

/**
 * A file the controller refuses to read: not a regular file, or larger than its limit. The
 * message is `<path> <problem>`; callers add what the file is for and the fix.
 */
export class UnsafeFileError extends FpmMultiError {
  readonly path: string;
  readonly problem: string;
  /** `untrusted`: a log someone other than root, the controller or its instance's user could have swapped (src/process/log-access.ts). */
  readonly reason: 'not-regular' | 'too-large' | 'untrusted';

  constructor(path: string, reason: 'not-regular' | 'too-large' | 'untrusted', problem: string) {
    super(`${path} ${problem}`);
    this.path = path;
    this.reason = reason;
    this.problem = problem;
  }
}

function notRegular(path: string, mode: number, followed: boolean): UnsafeFileError {
  let leadsTo = '';
  if (followed) {
    // Only on this error path: say where a symlink led ("it leads to /dev/zero").
    try {
      const real = realpathSync(path);
      if (real !== resolvePath(path)) leadsTo = ` (it leads to ${real})`;
    } catch {
      // gone meanwhile: the type found is still the answer
    }
  }
  return new UnsafeFileError(path, 'not-regular', `is ${describeFileType(mode)}, not a regular file${leadsTo}`);
}

function tooLarge(path: string, limit: number, found: string): UnsafeFileError {
  return new UnsafeFileError(path, 'too-large', `is larger than the limit of ${formatBytes(limit)} (found ${found})`);
}

/**
 * The first reads of a small file go here: no allocation per read. Safe because reads are
 * synchronous and every caller copies or decodes the bytes before returning.
 */
const SCRATCH = Buffer.allocUnsafe(64 * KIB);
/** O_NONBLOCK: opening a FIFO never waits for a writer (it is refused after fstat anyway). */
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;

/**
 * Reads a regular file into a buffer (SCRATCH when it fits), at most `limits.maxBytes`.
 * The path is looked at first, so that a device is never even opened (opening one can have
 * effects: a watchdog starts, a tape rewinds); the open descriptor is checked again, because the
 * path can be replaced in between. A file at the limit is read; one byte more is refused.
 */
function readBounded(path: string, limits: ReadLimits): { buffer: Buffer; length: number } {
  const { maxBytes, noFollow = false, offset = 0, procfs = false } = limits;
  if (!procfs) {
    const seen = noFollow ? lstatSync(path) : statSync(path);
    if (!seen.isFile()) throw notRegular(path, seen.mode, !noFollow);
    if (seen.size - offset > maxBytes) throw tooLarge(path, maxBytes, formatBytes(seen.size - offset));
  }
  const fd = openSync(path, READ_FLAGS | (noFollow ? fsConstants.O_NOFOLLOW : 0));
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile()) throw notRegular(path, opened.mode, !noFollow);
    const expected = opened.size - offset;
    if (expected > maxBytes) throw tooLarge(path, maxBytes, formatBytes(expected));
    // One byte more than allowed tells "larger" from "exactly the limit". /proc files say size 0:
    // the loop grows the buffer until the end of the file or the limit, never trusting st_size.
    const capacity = maxBytes + 1;
    const wanted = Math.min(Math.max(expected + 1, 4 * KIB), capacity);
    let buffer = wanted <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(wanted);
    let length = 0;
    let position = offset;
    for (;;) {
      if (length === buffer.length) {
        if (length >= capacity) throw tooLarge(path, maxBytes, `more than ${formatBytes(maxBytes)}`);
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, capacity));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const count = readSync(fd, buffer, length, buffer.length - length, position);
      if (count === 0) break;
      length += count;
      position += count;
      // All that fstat announced (as readFileSync stops); /proc files announce 0 and read to the end.
      if (length === expected) break;
    }
    if (length > maxBytes) throw tooLarge(path, maxBytes, `more than ${formatBytes(maxBytes)}`);
    return { buffer, length };
  } finally {
    closeSync(fd);
  }
}

/** Refuses what is not a regular file, as every bounded read does (for callers that open files themselves). */
export function refuseIrregular(path: string, mode: number, followed: boolean): void {
  if ((mode & fsConstants.S_IFMT) !== fsConstants.S_IFREG) throw notRegular(path, mode, followed);
}

/** readBounded's bytes, copied out: the caller may keep them. */
export function readRegularFileBytes(path: string, limits: ReadLimits): Buffer {
  const { buffer, length } = readBounded(path, limits);
  return buffer === SCRATCH ? Buffer.from(buffer.subarray(0, length)) : buffer.subarray(0, length);
}

/** readBounded's bytes as UTF-8 text (invalid sequences become U+FFFD, as readFileSync does). */
export function readRegularFile(path: string, limits: ReadLimits): string {
  const { buffer, length } = readBounded(path, limits);
  return buffer.toString('utf8', 0, length);
}

/** The limits of a /proc file: no stat before the open, read to the end. */
export const PROC_FILE_LIMITS: ReadLimits = { maxBytes: PROC_FILE_MAX_BYTES, procfs: true };
