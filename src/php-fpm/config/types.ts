// What a php-fpm configuration is, as the controller reads it: the result types, the options that
// stand for php-fpm's command line, the reader the parser reads files through, php-fpm 8.2's
// compiled-in defaults and the error for a configuration php-fpm cannot read either. Pure: no IO.
import { FpmMultiError } from '../../errors.js';
import { EXIT_FAILURE } from '../../exit-codes.js';

// ---------------------------------------------------------------------------------------------
// Compiled-in defaults of Debian's php8.2-fpm (`php-fpm8.2 -h` and `-tt` show them).

/** PHP_PREFIX: where relative `include` and unix `listen` paths start without `-p`. */
export const DEFAULT_PHP_PREFIX = '/usr';
/** PHP_LOCALSTATEDIR: where relative `pid` and `error_log` paths start without `-p`. */
export const DEFAULT_LOCAL_STATE_DIR = '/var';
/** error_log when the configuration sets none, relative like a configured one. */
export const DEFAULT_ERROR_LOG = 'log/php-fpm.log';
export const DEFAULT_PING_RESPONSE = 'pong';
export const DEFAULT_SYSLOG_IDENT = 'php-fpm';
/** syslog.facility when unset (fpm_conf.c: LOG_DAEMON). */
export const DEFAULT_SYSLOG_FACILITY = 'daemon';
/** pm.status_path php-fpm uses when only pm.status_listen is set. */
export const DEFAULT_SHARED_STATUS_PATH = '/';
/**
 * Everything one configuration reads, the main file and all its includes (each file is also
 * limited to FPM_CONFIG_MAX_BYTES when it is read): a glob can match any number of files.
 */
export const FPM_CONFIG_TOTAL_MAX_BYTES = 16 * 1024 * 1024;
/** php-fpm refuses a 6th nested file: "failed to include more than 5 files recursively". */
export const MAX_NESTED_FILES = 5;
/** Suffix php-fpm appends to a pool name for the extra listener that pm.status_listen opens. */
export const STATUS_LISTENER_SUFFIX = '_status';

/**
 * PHP constants a value may name. Only the error-level ones are built in: they are what fpm
 * configurations use (`php_admin_value[error_reporting] = E_ALL & ~E_NOTICE`); PHP 8.2 values.
 */
export const PHP_ERROR_CONSTANTS: Readonly<Record<string, string>> = {
  E_ERROR: '1',
  E_WARNING: '2',
  E_PARSE: '4',
  E_NOTICE: '8',
  E_CORE_ERROR: '16',
  E_CORE_WARNING: '32',
  E_COMPILE_ERROR: '64',
  E_COMPILE_WARNING: '128',
  E_USER_ERROR: '256',
  E_USER_WARNING: '512',
  E_USER_NOTICE: '1024',
  E_STRICT: '2048',
  E_RECOVERABLE_ERROR: '4096',
  E_DEPRECATED: '8192',
  E_USER_DEPRECATED: '16384',
  E_ALL: '32767',
};

export const PROCESS_MANAGERS = ['static', 'dynamic', 'ondemand'] as const;

// ---------------------------------------------------------------------------------------------
// Public types

export interface SourceRef {
  file: string;
  /** 1-based; 0 when the whole file is meant. */
  line: number;
}

/**
 * Where the synchronous parser (parseFpmConfig) gets files from: tests and in-memory callers.
 * The controller itself reads through the one System (see load.ts), with AsyncFpmConfigReader.
 */
export interface FpmConfigReader {
  /** The file's text; throws when it cannot be read. */
  readFile(path: string): string;
  /**
   * glob(3) as php-fpm calls it (GLOB_ERR | GLOB_MARK): matches in byte order, directories
   * with a trailing '/', [] when nothing matches; throws when a directory the pattern has to
   * list cannot be read (php-fpm refuses the configuration then).
   */
  glob(pattern: string): string[];
}

/** FpmConfigReader's answers as promises: what a reader over System (async) gives. */
export interface AsyncFpmConfigReader {
  readFile(path: string): Promise<string>;
  glob(pattern: string): Promise<string[]>;
}

/** php-fpm's command line and build, as far as they change how it reads its configuration. */
export interface FpmCommandLine {
  /** Environment php-fpm will see, for `${VAR}`. Default: empty. */
  env?: Readonly<Record<string, string | undefined>>;
  /** php-fpm's `-p`/`--prefix`. */
  prefix?: string;
  /** php-fpm's `-g`/`--pid`: used when the configuration sets no pid. */
  pidFile?: string;
  /** php-fpm's `-D` (true) or `-F` (false): overrides `daemonize`. */
  forceDaemonize?: boolean;
  /** Compiled-in PHP_PREFIX. Default DEFAULT_PHP_PREFIX. */
  phpPrefix?: string;
  /** Compiled-in PHP_LOCALSTATEDIR. Default DEFAULT_LOCAL_STATE_DIR. */
  localStateDir?: string;
  /** Constants a bare value may name. Default PHP_ERROR_CONSTANTS. */
  constants?: Readonly<Record<string, string>>;
}

export interface FpmConfigOptions extends FpmCommandLine {
  reader: FpmConfigReader;
}

/**
 * Where the master logs: a file (error_log made absolute from the prefix, php-fpm's default
 * log/php-fpm.log when unset), or syslog with the ident and facility it logs under.
 */
export type FpmErrorLog = { kind: 'file'; path: string } | { kind: 'syslog'; ident: string; facility: string };

export interface FpmInclude extends SourceRef {
  /** The pattern as php-fpm globs it (made absolute from the prefix). */
  pattern: string;
  /** Files it matched, in the order they were read. */
  files: string[];
}

/** A user or group a config names, which php-fpm looks up only when it starts (not with -t). */
export interface FpmAccount {
  /** The key that names it: user, group, listen.owner, listen.group, listen.acl_users, listen.acl_groups. */
  key: string;
  kind: 'user' | 'group';
  /** One name (an ACL list is split at its commas, as php-fpm splits it: without trimming). */
  name: string;
  /** Whether php-fpm also accepts a number here (user, group, listen.owner, listen.group; not the ACL lists). */
  numericAllowed: boolean;
  at: SourceRef;
}

/** rlimit_files or rlimit_core as written: php-fpm's setrlimit refuses only at start. */
export interface FpmLimit {
  key: 'rlimit_files' | 'rlimit_core';
  value: string;
  at: SourceRef;
}

export interface FpmGlobalConfig {
  /** Absolute (or as relative as the prefix is); null when php-fpm writes no pid file. */
  pid: string | null;
  /** Where the configuration itself sets `pid` (which php-fpm prefers over --pid); null when it does not. */
  pidAt: SourceRef | null;
  /**
   * process_control_timeout in seconds: how long the master lets workers finish their requests on
   * a graceful stop (SIGQUIT) or reload (SIGUSR2). php-fpm's default 0 cuts them at once. null
   * when the value is not one php-fpm reads (its config test names it).
   */
  processControlTimeoutS: number | null;
  errorLog: FpmErrorLog;
  /**
   * Where the configuration sets error_log; null when it does not, so that php-fpm writes to its
   * compiled-in default, which every other instance without error_log shares. Absent: not read.
   */
  errorLogAt?: SourceRef | null;
  daemonize: boolean;
  includes: FpmInclude[];
  /** rlimit_files and rlimit_core of [global] (the master's own limits). */
  rlimits?: FpmLimit[];
}

export type FpmProcessManager = (typeof PROCESS_MANAGERS)[number];

export interface FpmPool extends SourceRef {
  /** As first spelled; `file`/`line` are where the section was first opened. */
  name: string;
  /** Unix socket path (made absolute like php-fpm does) or TCP address as written; null if unset. */
  listen: string | null;
  listenAt: SourceRef | null;
  /** pm.status_listen: a second listener php-fpm opens as pool `<name>_status`. */
  statusListen: string | null;
  statusListenAt: SourceRef | null;
  pingPath: string | null;
  /** 'pong' when ping.path is set and ping.response is not; null without ping.path. */
  pingResponse: string | null;
  statusPath: string | null;
  pm: FpmProcessManager | null;
  user: string | null;
  group: string | null;
  /** The pool's `prefix`, made absolute. */
  prefix: string | null;
  /**
   * listen.allowed_clients split at commas (php-fpm accepts connections only from these
   * addresses); null or absent when unset (any client).
   */
  allowedClients?: string[] | null;
  /** Every user and group the pool names (user, group, listen.owner/group, the ACL lists). */
  accounts?: FpmAccount[];
  /** The pool's rlimit_files and rlimit_core (set in each worker). */
  rlimits?: FpmLimit[];
}

export interface FpmConfigWarning extends SourceRef {
  message: string;
  /** True when php-fpm refuses to start with this configuration; false when it only warns. */
  refusedByPhpFpm: boolean;
}

export interface FpmConfig {
  file: string;
  global: FpmGlobalConfig;
  pools: FpmPool[];
  /** Every file read, in reading order, the main file first. */
  files: string[];
  warnings: FpmConfigWarning[];
}

/** The configuration cannot be read the way php-fpm reads it; names file:line, what and the fix. */
export class FpmConfigError extends FpmMultiError {
  readonly file: string;
  readonly line: number;
  readonly found: string;
  readonly fix: string;

  constructor(at: SourceRef, found: string, fix: string) {
    const where = at.line > 0 ? `${at.file}:${at.line}` : at.file;
    super(`${where}: ${found}. ${fix}`, EXIT_FAILURE);
    this.file = at.file;
    this.line = at.line;
    this.found = found;
    this.fix = fix;
  }
}

/**
 * A file the reader refused before reading it (not a regular file, or over `maxBytes`): the
 * edge (load.ts) turns System's UnsafeFileError into this, so that the parser can name the fix
 * without depending on the module that does the IO.
 */
export class RefusedFileError extends Error {
  readonly reason: 'not-regular' | 'too-large';
  readonly problem: string;
  readonly maxBytes: number;

  constructor(path: string, reason: 'not-regular' | 'too-large', problem: string, maxBytes: number) {
    super(`${path} ${problem}`);
    this.name = 'RefusedFileError';
    this.reason = reason;
    this.problem = problem;
    this.maxBytes = maxBytes;
  }
}
