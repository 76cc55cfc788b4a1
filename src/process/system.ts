// The operating system as the controller sees it: processes, files and sockets. Built once in the
// entry point (src/cli.ts) and handed to every command in its Io, so every layer above can be
// tested against a fake (test/fixtures/fake-system.ts) and the real implementation stays a thin
// layer over `node:` modules. The bounded file reading primitive lives in src/process/files.ts.
//
// Conventions a fake must follow too:
// - fs methods reject with an Error carrying the errno `code` ('ENOENT', 'EACCES', ...), like
//   node:fs does; callers test it with `errnoCode()`.
// - `kill` never throws for the two expected failures: it returns 'ESRCH' or 'EPERM'.

import { accessSync, constants as fsConstants, lstatSync, readdirSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { errnoCode, errnoError, FpmMultiError } from '../errors.js';
import { PROC_FILE_LIMITS, readRegularFile, readRegularFileBytes, refuseIrregular, type ReadLimits } from './files.js';

export {
  DECLARATION_MAX_BYTES, ERROR_LOG_TAIL_MAX_BYTES, FPM_CONFIG_MAX_BYTES, LOG_READ_CHUNK_BYTES, LOG_TAIL_MAX_BYTES, PIDFILE_MAX_BYTES, PROC_FILE_MAX_BYTES, RECORD_MAX_BYTES,
  START_FAILURE_MAX_BYTES, readRegularFile, readRegularFileBytes, UnsafeFileError, type ReadLimits,
} from './files.js';

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
  /** Open file descriptors of ours, given to the child as its fds 3, 4, … (after fd3 when both): listening sockets handed over. */
  inheritFds?: readonly number[];
  /** Called synchronously once the child exists (it holds its copies of inheritFds by then). */
  afterSpawn?: () => void;
}

/** A listening unix socket of the controller's, to be handed to a php-fpm (src/process/handover.ts). */
export interface ListeningSocket {
  fd: number;
  /**
   * Right after a child inherited it: makes the socket blocking and closes the controller's
   * descriptor at once (which unlinks its bound path). php-fpm's workers accept on a blocking
   * socket; on a non-blocking one (what node creates) each accept that finds no connection ends
   * the worker, and php-fpm forks it again, hundreds of times a second. The flag belongs to the
   * socket the child shares, and the controller stops accepting on it in the same instant.
   */
  handOff(): void;
  /** Closes the controller's descriptor (the child keeps its copy), unlinking its bound path; idempotent. */
  close(): Promise<void>;
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

/**
 * A regular file kept open to be read piece by piece: a log followed across its rotation (the
 * descriptor still reads the renamed file, so that no line written before php-fpm reopened its
 * log is lost). Every read is bounded by the caller.
 */
export interface ReadableFile {
  /** fstat of the open file: its identity (dev, ino) and current size. */
  stat(): Promise<FileStat>;
  /** At most `maxBytes` from `position`; fewer (or none) at the end of the file. */
  read(position: number, maxBytes: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Where a stream socket connects: a unix socket's path, or a TCP host and port. */
export type SocketAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/**
 * A stream socket on its way to being connected (a node:net Socket, or a fake's stream). It emits
 * 'connect' once connected, then 'data', 'end' and 'close'; 'error' carries an errno `code`
 * (ENOENT, ECONNREFUSED, EACCES, …) as node:net's errors do. Its user destroys it when done.
 */
export type Connection = Duplex;

/**
 * Synchronous lookups, for the one caller that cannot wait: the model is built by a pure,
 * synchronous function (src/model/model.ts) that asks, while it derives each instance, whether a
 * file exists or is executable and what a directory holds (a FileProbe, src/model/load.ts). They
 * run once per command, before any concurrency, and cost microseconds. Errors are thrown with the
 * errno `code`, like the asynchronous methods reject.
 */
export interface SyncFiles {
  stat(path: string): FileStat;
  readdir(path: string): string[];
  /** access(2) with X_OK for this process: false when it is not executable or not there. */
  isExecutable(path: string): boolean;
  /** readFile's bytes (the declaration is decoded by its reader, not as UTF-8 here). */
  readFileBytes(path: string, limits: ReadLimits): Buffer;
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
  /**
   * Makes `path` a symlink to `target` atomically: a sibling temporary symlink renamed over it,
   * so that a process looking the path up (php-fpm re-executing itself) sees the old or the new
   * target, never none.
   */
  replaceSymlink(path: string, target: string): Promise<void>;
  /** link(2) and rename(2): a socket's second name, and moving a name over another atomically. */
  link(existing: string, newPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /**
   * Binds and listens on a new unix socket at `path` (which must not exist), owned and moded as
   * given (php-fpm applies no chown/chmod to a socket it inherits): lchown, then chmod only if
   * `path` is still the socket the bind made (chmod follows symlinks: only for a directory
   * nobody else may write, see src/process/handover.ts).
   */
  listenUnix(path: string, owner: { uid: number; gid: number; mode: number }): Promise<ListeningSocket>;
  /** Creates one directory with exactly `mode` (the umask does not apply); rejects EEXIST if present. */
  mkdir(path: string, mode: number): Promise<void>;
  /** lchown(2), never through a symlink (-1 leaves the uid or gid as it is): gives a directory the controller made to its owner. */
  chown(path: string, uid: number, gid: number): Promise<void>;
  /**
   * Opens (creating with mode 0600 if missing) read-write, refusing a symlink (O_NOFOLLOW); close-on-exec.
   * `readOnly`: an existing file, O_RDONLY (flock works on it; a read-only run directory).
   */
  openLockFile(path: string, options?: { readOnly?: boolean }): Promise<OpenFile>;
  /**
   * Starts connecting at once and returns the connection; a unix socket's connect(2) happens
   * before this returns, with the process's credentials of that moment. No timeout here: the
   * caller's deadline covers connecting and the exchange together (src/fastcgi/client.ts), so one
   * timer tells "not even connected" from "connected, no reply".
   */
  connect(address: SocketAddress): Connection;
  /**
   * Opens a regular file read-only, never through a symlink at its last component (O_NOFOLLOW:
   * rejects with ELOOP); anything else is refused with UnsafeFileError before it is opened (a
   * FIFO would block, a device is never opened). Its directories are followed: the caller checks
   * who controls them (src/process/log-access.ts).
   */
  openReadable(path: string): Promise<ReadableFile>;
  /** See SyncFiles: for the model's file probe and the declaration's read. */
  readonly sync: SyncFiles;
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

export { errnoCode, errnoError } from '../errors.js';


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
    for (const fd of options.inheritFds ?? []) stdio.push(fd);
    const child = spawn(program, args, { env: options.env, cwd: options.cwd, stdio });
    if (child.pid !== undefined) options.afterSpawn?.();
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

async function replaceSymlink(path: string, target: string): Promise<void> {
  const { randomBytes } = await import('node:crypto');
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await fs.symlink(target, tmp);
  try {
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.unlink(tmp).catch(() => undefined);
    throw error;
  }
}

async function listenUnix(path: string, owner: { uid: number; gid: number; mode: number }): Promise<ListeningSocket> {
  const { createServer } = await import('node:net');
  const server = createServer();
  // Connections are php-fpm's: none reaches this path before it is published under the listen
  // address, and the controller closes its descriptor before that.
  server.on('connection', (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, backlog: 511 }, () => resolve());
  });
  try {
    // Defence in depth: the hand-over binds only in a directory nobody else may write
    // (describeUnsafeHandover, src/process/handover.ts), where the name stays ours. Were it
    // swapped anyway: lchown never follows a symlink, and the name must still be the socket the
    // bind made (dev and ino, lstat) right before chmod. node has no chmod that leaves a symlink
    // alone on Linux (fs.lchmod is macOS-only; fchmod on the socket's descriptor changes the
    // socket, not its name in the directory), so the instant between that lstat and the chmod
    // remains: closed by the directory rule, not here.
    const bound = lstatSync(path);
    if (!bound.isSocket()) throw new FpmMultiError(`cannot hand over ${path}: it is not the socket just bound there (it was replaced); nothing was changed`);
    await fs.lchown(path, owner.uid, owner.gid);
    const now = lstatSync(path);
    if (!now.isSocket() || now.dev !== bound.dev || now.ino !== bound.ino) {
      throw new FpmMultiError(`cannot hand over ${path}: it is no longer the socket bound there (it was replaced); its mode was not set`);
    }
    await fs.chmod(path, owner.mode);
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  }
  // node:net keeps the descriptor in its handle; there is no public accessor for a server's fd.
  const fd = (server as unknown as { _handle: { fd: number } | null })._handle?.fd;
  if (fd === undefined || !Number.isInteger(fd) || fd < 0) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new FpmMultiError(`cannot hand over ${path}: the socket's descriptor is not available`);
  }
  const handle = (server as unknown as { _handle: { setBlocking(blocking: boolean): number } | null })._handle;
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    fd,
    handOff: () => {
      handle?.setBlocking(true);
      void close(); // uv_close stops accepting and unlinks the bound path before this returns
    },
    close,
  };
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

async function openReadable(path: string): Promise<ReadableFile> {
  // The path first, so that a device is never even opened; the descriptor again, for the path
  // can be replaced in between (as readBounded does).
  // lstat, as O_NOFOLLOW below: a symlink is refused (ELOOP), never followed to what it names.
  const link = await fs.lstat(path);
  if (link.isSymbolicLink()) throw errnoError('ELOOP', 'open', path);
  refuseIrregular(path, link.mode, false);
  const handle = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY | fsConstants.O_NOFOLLOW);
  try {
    refuseIrregular(path, (await handle.stat()).mode, true);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return {
    stat: async () => toFileStat(await handle.stat()),
    read: async (position, maxBytes) => {
      const buffer = Buffer.allocUnsafe(maxBytes);
      const { bytesRead } = await handle.read(buffer, 0, maxBytes, position);
      return buffer.subarray(0, bytesRead);
    },
    close: () => handle.close(),
  };
}

/**
 * node:net, loaded on the first connection: it costs ~2.5 ms of every start-up, and status and
 * stop never connect. connect() is synchronous, hence require rather than import().
 */
let netModule: typeof import('node:net') | undefined;
function loadNet(): typeof import('node:net') {
  netModule ??= createRequire(import.meta.url)('node:net') as typeof import('node:net');
  return netModule;
}

/** System.connect of the real system: a node:net socket, connecting as soon as it is made. */
export function connectSocket(address: SocketAddress): Connection {
  const { createConnection } = loadNet();
  return address.kind === 'unix' ? createConnection({ path: address.path }) : createConnection({ host: address.host, port: address.port });
}

const realSyncFiles: SyncFiles = {
  stat: (path) => toFileStat(statSync(path)),
  readdir: (path) => readdirSync(path),
  isExecutable(path) {
    try {
      accessSync(path, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  readFileBytes: (path, limits) => readRegularFileBytes(path, limits),
};

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
    replaceSymlink,
    link: (existing, newPath) => fs.link(existing, newPath),
    rename: (from, to) => fs.rename(from, to),
    listenUnix,
    unlink: (path) => fs.unlink(path),
    async mkdir(path, mode) {
      await fs.mkdir(path, { mode });
      // mkdir(2) applies the umask; the mode asked for is the mode wanted.
      await fs.chmod(path, mode);
    },
    chown: (path, uid, gid) => fs.lchown(path, uid, gid),
    openLockFile,
    openReadable,
    connect: connectSocket,
    sync: realSyncFiles,
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    uid,
    pid: process.pid,
    processGroupId: readOwnProcessGroupId(),
  };
}
