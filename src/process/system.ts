// The operating system as process control sees it. Everything in src/process/pidfile.ts, src/process/proc.ts,
// src/process/signal.ts and src/process/lock.ts does its IO through this interface, so higher layers can be
// tested against a fake and the real implementation stays a thin layer over `node:` modules.
//
// Conventions a fake must follow too:
// - fs methods reject with an Error carrying the errno `code` ('ENOENT', 'EACCES', ...), like
//   node:fs does; callers test it with `errnoCode()`.
// - `kill` never throws for the two expected failures: it returns 'ESRCH' or 'EPERM'.

import {
  closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync,
  realpathSync, statSync, type Stats,
} from 'node:fs';
import * as fs from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FpmMultiError } from '../errors.js';

export type FileKind = 'file' | 'directory' | 'symlink' | 'other';

export interface FileStat {
  kind: FileKind;
  /** Permission bits including setuid/setgid/sticky: `st_mode & 0o7777`. */
  mode: number;
  uid: number;
  gid: number;
  /** Device and inode: together they name the file, whatever path led to it. */
  dev: number;
  ino: number;
  /** In bytes: where a log file ended before an operation, to show only what it added. */
  size: number;
}

export interface RunOptions {
  /** The child's whole environment: nothing is inherited from the controller. */
  env: Record<string, string>;
  /** The child is SIGKILLed after this long; the result then has `timedOut: true`. */
  timeoutMs: number;
  cwd?: string;
  /** An open file descriptor of ours, given to the child as its fd 3 (used by src/process/lock.ts). */
  fd3?: number;
}

export interface RunResult {
  /** null when the child was ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export type KillResult = 'sent' | 'ESRCH' | 'EPERM';

/** A file we keep open (the lock file): the descriptor outlives the calls that use it. */
export interface OpenFile {
  readonly fd: number;
  stat(): Promise<FileStat>;
  /** Replaces the whole content through this descriptor (truncate + write at offset 0). */
  overwrite(content: string): Promise<void>;
  close(): Promise<void>;
}

export interface System {
  /** Runs `program` (an absolute path) to completion; rejects with SpawnError when it cannot start. */
  run(program: string, args: readonly string[], options: RunOptions): Promise<RunResult>;
  /** kill(2) of exactly one process. Only src/process/signal.ts may call it. */
  kill(pid: number, signal: NodeJS.Signals): KillResult;
  /**
   * A regular file's text, never more than `limits.maxBytes` (see readRegularFile); without
   * `limits`, the limits of a /proc file. Rejects with UnsafeFileError for anything else.
   */
  readFile(path: string, limits?: ReadLimits): Promise<string>;
  readlink(path: string): Promise<string>;
  realpath(path: string): Promise<string>;
  lstat(path: string): Promise<FileStat>;
  stat(path: string): Promise<FileStat>;
  readdir(path: string): Promise<string[]>;
  /** Writes a sibling temporary file (created exclusively, never through a symlink) then renames it over `path`. */
  writeFileAtomic(path: string, content: string, mode: number): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates one directory with exactly `mode` (the umask does not apply); rejects EEXIST if present. */
  mkdir(path: string, mode: number): Promise<void>;
  /**
   * Opens (creating with mode 0600 if missing) read-write, refusing a symlink (O_NOFOLLOW); close-on-exec.
   * `readOnly`: an existing file, O_RDONLY (flock works on it; a read-only run directory).
   */
  openLockFile(path: string, options?: { readOnly?: boolean }): Promise<OpenFile>;
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Real uid of the controller. */
  readonly uid: number;
  readonly pid: number;
  readonly processGroupId: number;
}

/** A program could not be started at all (missing, not executable): nothing ran. */
export class SpawnError extends FpmMultiError {
  readonly program: string;

  constructor(program: string, cause: string) {
    super(`cannot run ${program}: ${cause}. Check that the program is installed and executable.`);
    this.program = program;
  }
}

/** The errno code ('ENOENT', ...) of an error thrown by a System fs method, if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Builds an error shaped like node:fs's, for fakes and for our own checks. */
export function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

// ---------------------------------------------------------------------------------------------
// Reading files others may be able to write: one bounded, checked primitive for every file the
// controller reads (the declaration, php-fpm configs and their includes, records, pidfiles, the
// lock's pid, /proc). A FIFO would block the open or the read forever, /dev/zero never ends, a
// huge file exhausts memory: each is refused with the path and what it is, before it is read.

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
  readonly reason: 'not-regular' | 'too-large';

  constructor(path: string, reason: 'not-regular' | 'too-large', problem: string) {
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

const PROC_FILE_LIMITS: ReadLimits = { maxBytes: PROC_FILE_MAX_BYTES, procfs: true };

/** After the child exits, how long we keep reading pipes a daemonized grandchild may hold open. */
const STDIO_DRAIN_AFTER_EXIT_MS = 250;
/** Output kept per stream: enough for any error message, bounded against a chatty program. */
const OUTPUT_LIMIT_BYTES = 1024 * 1024;

function toFileStat(stats: Stats): FileStat {
  const kind: FileKind = stats.isFile()
    ? 'file'
    : stats.isDirectory()
      ? 'directory'
      : stats.isSymbolicLink()
        ? 'symlink'
        : 'other';
  return { kind, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, dev: stats.dev, ino: stats.ino, size: stats.size };
}

/** Field 5 of /proc/self/stat, read once: a process cannot change its own group after exec behind our back. */
function readOwnProcessGroupId(): number {
  const stat = readRegularFile('/proc/self/stat', PROC_FILE_LIMITS);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgid = Number(fields[2]);
  if (!Number.isInteger(pgid) || pgid <= 0) {
    throw new FpmMultiError(`cannot read the controller's process group from /proc/self/stat: ${JSON.stringify(stat)}. Is /proc mounted?`);
  }
  return pgid;
}

/** Loaded on first use: read-only commands (status) spawn nothing and need not load it. */
async function loadSpawn(): Promise<typeof import('node:child_process').spawn> {
  return (await import('node:child_process')).spawn;
}

async function run(program: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const spawn = await loadSpawn();
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (options.fd3 !== undefined) stdio.push(options.fd3);
    const child = spawn(program, args, { env: options.env, cwd: options.cwd, stdio });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (outBytes < OUTPUT_LIMIT_BYTES) out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errBytes < OUTPUT_LIMIT_BYTES) err.push(chunk);
      errBytes += chunk.length;
    });
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const killTimer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (settled || exit === undefined) return;
      settled = true;
      clearTimeout(killTimer);
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        exitCode: exit.code,
        signal: exit.signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    };
    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      reject(new SpawnError(program, error.message));
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // 'close' waits for every holder of our pipes: a daemon that kept them would hang us.
      drainTimer = setTimeout(finish, STDIO_DRAIN_AFTER_EXIT_MS);
    });
    child.on('close', finish);
  });
}

async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const { randomBytes } = await import('node:crypto'); // on first write only: status writes nothing
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  // 'wx' = O_CREAT|O_EXCL: never opens an existing file or follows a planted symlink.
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(content, 'utf8');
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.unlink(tmp).catch(() => undefined);
    throw error;
  }
}

async function openLockFile(path: string, options: { readOnly?: boolean } = {}): Promise<OpenFile> {
  // libuv adds O_CLOEXEC to every open: php-fpm and other children never inherit the lock.
  const flags = options.readOnly === true ? fsConstants.O_RDONLY : fsConstants.O_RDWR | fsConstants.O_CREAT;
  const handle = await fs.open(path, flags | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK, 0o600);
  return {
    fd: handle.fd,
    stat: async () => toFileStat(await handle.stat()),
    overwrite: async (content: string) => {
      await handle.truncate(0);
      await handle.write(content, 0, 'utf8');
    },
    close: () => handle.close(),
  };
}

export function createRealSystem(): System {
  const uid = process.getuid?.();
  if (uid === undefined) throw new FpmMultiError('process.getuid() is unavailable: php-fpm-multi runs on Linux only.');
  return {
    run,
    kill(pid, signal) {
      try {
        process.kill(pid, signal);
        return 'sent';
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ESRCH' || code === 'EPERM') return code;
        throw error;
      }
    },
    // Synchronous behind the promise interface: the files are /proc entries, pidfiles and records,
    // read in microseconds, less than a thread-pool round trip; measured on status, stop and
    // peak memory (docs/BENCHMARKS.md). Errors still arrive as rejections.
    readFile: async (path, limits = PROC_FILE_LIMITS) => readRegularFile(path, limits),
    readlink: async (path) => readlinkSync(path),
    realpath: async (path) => realpathSync(path),
    lstat: async (path) => toFileStat(lstatSync(path)),
    stat: async (path) => toFileStat(statSync(path)),
    readdir: async (path) => readdirSync(path),
    writeFileAtomic,
    unlink: (path) => fs.unlink(path),
    async mkdir(path, mode) {
      await fs.mkdir(path, { mode });
      // mkdir(2) applies the umask; the mode asked for is the mode wanted.
      await fs.chmod(path, mode);
    },
    openLockFile,
    now: () => Date.now(),
    sleep: (ms) => delay(ms),
    uid,
    pid: process.pid,
    processGroupId: readOwnProcessGroupId(),
  };
}
