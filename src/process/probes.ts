// The system probes of the preflight (src/process/preflight.ts): whether a binary is php-fpm
// (`-v`), users and groups (getent), the rlimits php-fpm may set, the size exec allows for its
// arguments and environment, and the directories of unix sockets. They only read.
import { posix as path } from 'node:path';
import { FpmMultiError } from '../errors.js';
import type { FpmLimit } from '../php-fpm/config/types.js';
import { DEFAULT_PATH } from '../model/invocation.js';
import type { SocketDirPlan } from '../model/socket-dir.js';
import { planSocketDirectoryOf } from './socket-dirs.js';
import { errnoCode, type System } from './system.js';

/** `php-fpm -v` answers at once; a program that hangs on it is not php-fpm either. */
const VERSION_PROBE_TIMEOUT_MS = 10_000;
/** What `php-fpm -v` prints for the FastCGI process manager SAPI: `PHP 8.2.36 (fpm-fcgi) …`. */
const FPM_SAPI = 'fpm-fcgi';

/** Memoizes async answers by key: a thousand instances of one binary run `-v` once. */
function memoize<T>(ask: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const answers = new Map<string, Promise<T>>();
  return (key) => {
    let answer = answers.get(key);
    if (answer === undefined) answers.set(key, (answer = ask(key)));
    return answer;
  };
}

/** Why `binary` is not php-fpm, from what its `-v` says; null when it is. */
async function describeNotFpm(system: System, binary: string, pathVariable: string | undefined): Promise<string | null> {
  let output: string;
  try {
    const result = await system.run(binary, ['-v'], { env: { PATH: pathVariable ?? DEFAULT_PATH }, timeoutMs: VERSION_PROBE_TIMEOUT_MS });
    output = `${result.stdout}${result.stderr}`;
  } catch (error) {
    if (error instanceof FpmMultiError) return `binary ${binary} cannot be run (${error.message}); point binary= at php-fpm, or use slot=`;
    throw error;
  }
  if (output.includes(`(${FPM_SAPI})`)) return null;
  const version = /^PHP (\d+)\.(\d+)\S* \(([^)]+)\)/m.exec(output);
  if (version !== null) {
    const [, major, minor, sapi] = version;
    const what = sapi === 'cli' ? "PHP's CLI" : `PHP's ${sapi} program`;
    return `${binary} is ${what} (${path.basename(binary)} -v says "(${sapi})"), not php-fpm: use slot=php${major}.${minor} (Debian: binary=/usr/sbin/php-fpm${major}.${minor})`;
  }
  const firstLine = output.trim().split('\n')[0] ?? '';
  return `${binary} is not php-fpm (${path.basename(binary)} -v does not say "(${FPM_SAPI})"${firstLine === '' ? '' : `; it says "${firstLine.slice(0, 80)}"`}): point binary= at php-fpm, or use slot=`;
}

/** getent answers from the NSS databases at once; one that hangs (a dead LDAP server) is not waited on for long. */
const ACCOUNT_LOOKUP_TIMEOUT_MS = 10_000;
/** Where getent lives (Debian, Alpine, Gentoo): the first one that runs answers. */
const GETENT_PROGRAMS = ['/usr/bin/getent', '/bin/getent'];
/** CAP_SYS_RESOURCE: lets a process raise a hard rlimit (up to /proc/sys/fs/nr_open for open files). */
const CAP_SYS_RESOURCE = 24n;

/** What `getent passwd|group NAME` found: the entry's own name and uid/gid, or null when NAME is unknown. */
type AccountAnswer = { found: string | null; id?: number } | 'cannot-tell';

/**
 * Asks the system (NSS: files, LDAP, systemd's dynamic users…) for a user or group, as php-fpm's
 * getpwnam/getgrnam will. 'cannot-tell' when no getent runs: then php-fpm decides at start.
 */
export async function lookUpAccount(system: System, kind: 'user' | 'group', name: string): Promise<AccountAnswer> {
  for (const program of GETENT_PROGRAMS) {
    let result;
    try {
      result = await system.run(program, [kind === 'user' ? 'passwd' : 'group', name], { env: { PATH: DEFAULT_PATH }, timeoutMs: ACCOUNT_LOOKUP_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof FpmMultiError) continue; // not installed there
      throw error;
    }
    // getent: 0 found, 2 not found; anything else (1, a timeout) says nothing about the name.
    if (result.exitCode === 2) return { found: null };
    if (result.exitCode !== 0 || result.timedOut) return 'cannot-tell';
    const fields = result.stdout.split('\n')[0]?.split(':') ?? [];
    const found = fields[0] ?? '';
    // passwd: name:x:uid:gid:…, group: name:x:gid:members; the id is the third field of both.
    const id = /^\d+$/.test(fields[2] ?? '') ? Number(fields[2]) : undefined;
    return found === '' ? 'cannot-tell' : id === undefined ? { found } : { found, id };
  }
  return 'cannot-tell';
}

/** The highest rlimit_files and rlimit_core php-fpm, started by this controller, may set. */
export interface RlimitBounds {
  /** /proc/sys/fs/nr_open: no process may have more open files. */
  nrOpen: number;
  /** The hard limits php-fpm inherits from the controller; null is unlimited. */
  hardFiles: number | null;
  hardCore: number | null;
  /** Whether the controller (so php-fpm) may raise a hard limit. */
  canRaise: boolean;
}

function parseLimit(text: string): number | null {
  return text === 'unlimited' ? null : Number(text);
}

/** Reads the bounds from /proc (through `system`); null when they cannot be read (then php-fpm decides). */
export async function readRlimitBounds(system: System): Promise<RlimitBounds | null> {
  try {
    const nrOpen = Number((await system.readFile('/proc/sys/fs/nr_open')).trim());
    const limits = await system.readFile('/proc/self/limits');
    const files = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
    const core = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(limits);
    const caps = /^CapEff:\s*([0-9a-f]+)$/m.exec(await system.readFile('/proc/self/status'));
    if (!Number.isSafeInteger(nrOpen) || files === null || core === null || caps === null) return null;
    return {
      nrOpen, hardFiles: parseLimit(files[2]!), hardCore: parseLimit(core[2]!), canRaise: ((BigInt(`0x${caps[1]!}`) >> CAP_SYS_RESOURCE) & 1n) === 1n,
    };
  } catch (error) {
    if (error instanceof FpmMultiError || errnoCode(error) !== undefined) return null;
    throw error;
  }
}

/**
 * Why php-fpm's setrlimit(value) would fail (EPERM): php-fpm sets the soft and hard limit to the
 * value. Open files never above nr_open; either limit above the inherited hard limit only with
 * CAP_SYS_RESOURCE. Null when it may; values php-fpm does not read are its config test's matter.
 */
export function describeLimitTooHigh(limit: FpmLimit, bounds: RlimitBounds): string | null {
  const value = limit.value === 'unlimited' && limit.key === 'rlimit_core' ? Infinity : /^\d+$/.test(limit.value) ? Number(limit.value) : null;
  if (value === null) return null;
  const hard = limit.key === 'rlimit_files' ? bounds.hardFiles : bounds.hardCore;
  if (limit.key === 'rlimit_files' && value > bounds.nrOpen) {
    const most = bounds.canRaise ? bounds.nrOpen : Math.min(bounds.nrOpen, hard ?? Infinity);
    return `${limit.value} is above /proc/sys/fs/nr_open (${bounds.nrOpen}), the most open files the kernel allows any process; lower it to at most ${most}`;
  }
  if (!bounds.canRaise && hard !== null && value > hard) {
    const what = limit.key === 'rlimit_files' ? 'open files' : 'core file size';
    return `${limit.value} is above the hard limit of ${what} php-fpm inherits (${hard}), which only a process with CAP_SYS_RESOURCE may raise (this one has not); lower it to at most ${hard}, or raise the hard limit of the service (ulimit -H, rc_ulimit)`;
  }
  return null;
}

/** The kernel's cap on exec's strings (fs/exec.c): 3/4 of _STK_LIM (8 MiB), whatever the stack limit. */
const EXEC_STRINGS_MAX_BYTES = 6 * 1024 * 1024;
/** ...and never less than ARG_MAX (32 pages). */
const EXEC_STRINGS_MIN_BYTES = 128 * 1024;
/** MAX_ARG_STRLEN: one argument or NAME=value of the environment, its NUL included (32 pages of 4 KiB). */
const EXEC_STRING_MAX_BYTES = 128 * 1024;
const POINTER_BYTES = 8;

/** What exec(2) counts for a program's arguments and environment: each string with its NUL, and a pointer to each. */
export function measureExec(argv: readonly string[], env: Readonly<Record<string, string>>): { bytes: number; longest: number } {
  const strings = [...argv, ...Object.entries(env).map(([name, value]) => `${name}=${value}`)];
  let bytes = 0;
  let longest = 0;
  for (const text of strings) {
    const size = Buffer.byteLength(text) + 1;
    bytes += size + POINTER_BYTES;
    longest = Math.max(longest, size);
  }
  return { bytes, longest };
}

/**
 * The most bytes of arguments and environment one exec may carry here: a quarter of the stack
 * limit php-fpm inherits from the controller, at most 6 MiB, at least 128 KiB (fs/exec.c);
 * null when /proc/self/limits cannot be read.
 */
export async function readExecLimit(system: System): Promise<number | null> {
  try {
    const stack = /^Max stack size\s+(\S+)/m.exec(await system.readFile('/proc/self/limits'));
    if (stack === null) return null;
    const soft = stack[1] === 'unlimited' ? Infinity : Number(stack[1]);
    if (Number.isNaN(soft)) return null;
    return Math.max(EXEC_STRINGS_MIN_BYTES, Math.min(EXEC_STRINGS_MAX_BYTES, Math.floor(soft / 4)));
  } catch (error) {
    if (error instanceof FpmMultiError || errnoCode(error) !== undefined) return null;
    throw error;
  }
}

/** Why exec would refuse php-fpm's launch with E2BIG (too large an environment or argument list); null when it would not. */
export function describeExecTooLarge(measured: { bytes: number; longest: number }, limit: number): string | null {
  const fix = 'shorten the env= and args= values (or the FPM_defaults ones) of this instance';
  if (measured.longest > EXEC_STRING_MAX_BYTES) {
    return `one argument or environment variable php-fpm would be started with takes ${measured.longest} bytes, more than the ${EXEC_STRING_MAX_BYTES} the kernel allows for one (MAX_ARG_STRLEN), so its exec would fail (E2BIG): ${fix}`;
  }
  if (measured.bytes > limit) {
    return `the arguments and environment php-fpm would be started with take ${measured.bytes} bytes (strings and pointers, as exec counts them), more than the ${limit} the kernel allows here (ARG_MAX: a quarter of the stack limit, at most 6 MiB), so its exec would fail (E2BIG): ${fix}`;
  }
  return null;
}

/**
 * Whether `binary`'s own config test (-t) already looks up the pool's user, group, listen.owner
 * and listen.group (php-fpm 8.2 and later do; it names them in its own words, and start and
 * restart run that test before anything is touched): then only the ACL lists are asked here.
 */
async function configTestChecksAccounts(system: System, binary: string, pathVariable: string | undefined): Promise<boolean> {
  try {
    const result = await system.run(binary, ['-v'], { env: { PATH: pathVariable ?? DEFAULT_PATH }, timeoutMs: VERSION_PROBE_TIMEOUT_MS });
    const version = /^PHP (\d+)\.(\d+)/m.exec(result.stdout);
    if (version === null) return false;
    const [major, minor] = [Number(version[1]), Number(version[2])];
    return major > 8 || (major === 8 && minor >= 2);
  } catch (error) {
    if (error instanceof FpmMultiError) return false;
    throw error;
  }
}

/** What the preflight asks the system, through `System`: memoized, so a thousand instances of one binary run `-v` once. */
export interface Probes {
  system: System;
  configTestChecksAccounts: (binary: string) => Promise<boolean>;
  execLimit: () => Promise<number | null>;
  runDir: string;
  account: (kind: 'user' | 'group', name: string) => Promise<AccountAnswer>;
  bounds: () => Promise<RlimitBounds | null>;
  notFpm: (binary: string) => Promise<string | null>;
  /** Whether the directory of a unix socket exists, will be created by start, or is refused (null: cannot be told). */
  socketDirectory: (dir: string) => Promise<SocketDirPlan | null>;
  realDirectory: (dir: string) => Promise<string>;
}

/** The probes of one preflight, each answer asked once (memoized). `pathVariable`: PATH for running `<binary> -v`. */
export function createProbes(system: System, runDir: string, pathVariable: string | undefined): Probes {
  return {
    system,
    runDir,
    notFpm: memoize((binary) => describeNotFpm(system, binary, pathVariable)),
    configTestChecksAccounts: memoize((binary) => configTestChecksAccounts(system, binary, pathVariable)),
    execLimit: (() => {
      const ask = memoize(() => readExecLimit(system));
      return () => ask('');
    })(),
    account: (() => {
      const ask = memoize((key) => lookUpAccount(system, key.startsWith('user:') ? 'user' : 'group', key.slice(key.indexOf(':') + 1)));
      return (kind: 'user' | 'group', name: string) => ask(`${kind}:${name}`);
    })(),
    bounds: (() => {
      const ask = memoize(() => readRlimitBounds(system));
      return () => ask('');
    })(),
    socketDirectory: memoize((dir) => planSocketDirectoryOf(system, dir)),
    realDirectory: memoize(async (dir) => {
      try {
        return await system.realpath(dir);
      } catch {
        return dir; // a missing directory is reported above; compare it as written
      }
    }),
  };
}
