// Everything `start` refuses before it touches a process, in one place: `check` (and so the
// runscript's checkconfig, which restart runs before its stop) and start/restart/reload (through
// src/process/targets.ts) call the same function, so they can never disagree. It only reads: `check`
// must not create the run directory or anything else.
import { posix as path } from 'node:path';
import { FpmMultiError, NotConfiguredError } from '../errors.js';
import type { readFpmConfig as ReadFpmConfig } from '../php-fpm/config/load.js';
import type { FpmConfig, FpmLimit, FpmPool } from '../php-fpm/config/types.js';
import { buildFpmEnvironment, buildLaunch, DEFAULT_PATH, type UsableInstance } from '../model/invocation.js';
import type { Instance, Model } from '../model/instance.js';
import { checkPidfileTrust, checkRunDirectory, PidfileContentError, readTrustedPidfile, UntrustedPathError } from './pidfile.js';
import { NEEDS_ROOT_DETAIL } from './inspect.js';
import { describeErrno } from './run-directory.js';
import { errnoCode, type System } from './system.js';

/** `php-fpm -v` answers at once; a program that hangs on it is not php-fpm either. */
const VERSION_PROBE_TIMEOUT_MS = 10_000;
/** What `php-fpm -v` prints for the FastCGI process manager SAPI: `PHP 8.2.36 (fpm-fcgi) …`. */
const FPM_SAPI = 'fpm-fcgi';
/** The controller's own files in the run directory are the lock, records, failures and temporary files. */
const PIDFILE_SUFFIX = '.pid';

export interface FpmFacts {
  pools: FpmPool[];
  errorLog: string | null;
  /** Why the config cannot be read as php-fpm reads it; null when it can. */
  problem: string | null;
  config: FpmConfig | null;
}

/** Reads the instance's php-fpm config the way php-fpm will (its prefix and environment), through `system`. */
export async function readFpmFacts(readFpmConfig: typeof ReadFpmConfig, system: System, instance: UsableInstance, path: string | undefined): Promise<FpmFacts> {
  try {
    const config = await readFpmConfig(system, instance.config, {
      env: buildFpmEnvironment(instance, path),
      ...(instance.prefix === null ? {} : { prefix: instance.prefix }),
      pidFile: instance.pidfile,
      forceDaemonize: true,
    });
    const errorLog = config.global.errorLog.kind === 'file' ? config.global.errorLog.path : null;
    return { pools: config.pools, errorLog, problem: null, config };
  } catch (error) {
    if (error instanceof FpmMultiError) return { pools: [], errorLog: null, problem: error.message, config: null };
    throw error;
  }
}

export interface InstancePreflight {
  facts: FpmFacts;
  /** What start refuses for this instance (it is then not started, and restart leaves it as it is). */
  problems: string[];
  /** What works but costs something (requests cut by a stop); check prints them, exit stays 0. */
  warnings: string[];
}

export interface Preflight {
  /** Instances whose php-fpm config was read: every usable enabled one, and the selected ones. */
  instances: Map<string, InstancePreflight>;
  /** Whole-run refusals: shared configs or pidfiles, listen addresses that collide. */
  collisions: string[];
  /** The run directory would be refused (start creates a missing one; check only looks). */
  runDirProblem: string | null;
}

export function isUsable(instance: Instance): instance is UsableInstance {
  return instance.problems.length === 0 && instance.binary !== null && instance.config !== null && instance.pidfile !== null;
}

/** The IO preflight needs beyond `System`, injectable for tests. */
export interface PreflightOptions {
  readFpmConfig: typeof ReadFpmConfig;
  /** PATH for running `<binary> -v` (as for php-fpm itself). */
  path?: string | undefined;
  /**
   * Only read the php-fpm configs (their pools), without the checks that refuse a start:
   * `health` and `status --pools` ask the pools of what runs, whatever a start would refuse.
   */
  factsOnly?: boolean;
}

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

/** Why the directory that will hold a unix socket is unusable; null when it exists. */
async function describeMissingDirectory(system: System, dir: string): Promise<'missing' | 'not-directory' | null> {
  try {
    return (await system.stat(dir)).kind === 'directory' ? null : 'not-directory';
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') return 'not-directory';
    return null; // EACCES and the like: php-fpm (root) may still reach it; its config test decides
  }
}

/** Whether a TCP listener lets the controller, connecting from the loopback address it uses, in. */
function allowsController(pool: FpmPool): string | null {
  const clients = pool.allowedClients;
  if (pool.pingPath === null || pool.pingPath === '' || clients === null || clients === undefined || pool.listen === null) return null;
  // Unix sockets ignore allowed_clients; only TCP listeners check the peer address.
  if (!pool.listen.includes(':') && !/^\d+$/.test(pool.listen)) return null;
  const host = pool.listen.includes(':') ? pool.listen.slice(0, pool.listen.lastIndexOf(':')).replace(/^\[|\]$/g, '') : '';
  // The controller reaches a wildcard on loopback (src/php-fpm/pools.ts), a specific address on itself.
  const from = host === '' || host === '0.0.0.0' || host === '*' ? '127.0.0.1' : host === '::' ? '::1' : host === 'localhost' ? '127.0.0.1' : host;
  if (clients.includes(from) || clients.includes('any')) return null;
  return from;
}

function describeWhere(at: { file: string; line: number } | null): string {
  return at === null ? '' : ` (${at.file}:${at.line})`;
}

/** getent answers from the NSS databases at once; one that hangs (a dead LDAP server) is not waited on for long. */
const ACCOUNT_LOOKUP_TIMEOUT_MS = 10_000;
/** Where getent lives (Debian, Alpine, Gentoo): the first one that runs answers. */
const GETENT_PROGRAMS = ['/usr/bin/getent', '/bin/getent'];
/** CAP_SYS_RESOURCE: lets a process raise a hard rlimit (up to /proc/sys/fs/nr_open for open files). */
const CAP_SYS_RESOURCE = 24n;

/** What `getent passwd|group NAME` found: the entry's own name, or null when NAME is unknown. */
type AccountAnswer = { found: string | null } | 'cannot-tell';

/**
 * Asks the system (NSS: files, LDAP, systemd's dynamic users…) for a user or group, as php-fpm's
 * getpwnam/getgrnam will. 'cannot-tell' when no getent runs: then php-fpm decides at start.
 */
async function lookUpAccount(system: System, kind: 'user' | 'group', name: string): Promise<AccountAnswer> {
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
    const found = result.stdout.split('\n')[0]?.split(':')[0] ?? '';
    return found === '' ? 'cannot-tell' : { found };
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

interface Probes {
  system: System;
  configTestChecksAccounts: (binary: string) => Promise<boolean>;
  execLimit: () => Promise<number | null>;
  runDir: string;
  account: (kind: 'user' | 'group', name: string) => Promise<AccountAnswer>;
  bounds: () => Promise<RlimitBounds | null>;
  notFpm: (binary: string) => Promise<string | null>;
  directory: (dir: string) => Promise<'missing' | 'not-directory' | null>;
  realDirectory: (dir: string) => Promise<string>;
}

/** The advice for a `pid =` line: remove it; name pidfile= only when that path would be accepted. */
async function describePidLine(probes: Probes, instance: UsableInstance, config: FpmConfig): Promise<string | null> {
  const { pid, pidAt } = config.global;
  if (pidAt === null || pid === null || pid === instance.pidfile) return null;
  const removal = `remove the "pid = …" line at ${pidAt.file}:${pidAt.line} (php-fpm-multi passes --pid itself), or point config= at a copy of ${instance.config} without it`;
  let alternative: string;
  try {
    await checkPidfileTrust(probes.system, pid);
    alternative = describeControllerFile(probes.runDir, pid) === null ? `; or set pidfile=${pid}` : '';
  } catch (error) {
    if (!(error instanceof UntrustedPathError)) throw error;
    alternative = ` (pidfile=${pid} would not do: ${error.message.replace(/^pidfile [^:]*: /, '')})`;
  }
  return `${instance.config} sets "pid = ${pid}", which php-fpm uses instead of --pid ${instance.pidfile}, so php-fpm-multi would wait for a pidfile that never comes: ${removal}${alternative}`;
}

/** Why `pidfile` would clash with the controller's own files in the run directory; null when it does not. */
function describeControllerFile(runDir: string, pidfile: string): string | null {
  if (path.dirname(pidfile) !== runDir) return null;
  const name = path.basename(pidfile);
  if (name.endsWith(PIDFILE_SUFFIX) && !name.startsWith('.')) return null;
  return `pidfile ${pidfile} is in the run directory ${runDir}, where php-fpm-multi keeps its lock, records and temporary files, and is not named <name>${PIDFILE_SUFFIX}: php-fpm would replace or remove one of them. Remove pidfile= (the default is ${runDir}/<instance>${PIDFILE_SUFFIX}) or name a .pid file`;
}

/** A pidfile the file system refuses to show us (EACCES as an ordinary user): named, never an internal error. */
function describeUnreadablePidfile(system: System, pidfile: string, error: unknown): string {
  const what = `pidfile ${pidfile}: ${describeErrno(error)}`;
  return errnoCode(error) === 'EACCES' && system.uid !== 0 ? `${what}: ${NEEDS_ROOT_DETAIL}` : `${what}; check the permissions of its directories`;
}

async function checkInstance(probes: Probes, options: PreflightOptions, instance: UsableInstance): Promise<InstancePreflight> {
  const facts = await readFpmFacts(options.readFpmConfig, probes.system, instance, options.path);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (options.factsOnly === true) return { facts, problems: facts.problem === null ? [] : [facts.problem], warnings };
  const execLimit = await probes.execLimit();
  if (execLimit !== null) {
    // The launch is the largest exec of an instance (the config test passes fewer arguments).
    const launch = buildLaunch(instance, options.path);
    const tooLarge = describeExecTooLarge(measureExec([launch.program, ...launch.args], launch.env), execLimit);
    if (tooLarge !== null) return { facts, problems: [tooLarge], warnings };
  }
  const notFpm = await probes.notFpm(instance.binary);
  if (notFpm !== null) problems.push(notFpm);
  if (facts.problem !== null) problems.push(facts.problem);
  const clash = describeControllerFile(probes.runDir, instance.pidfile);
  if (clash !== null) problems.push(clash);
  try {
    // Read, not only checked: start reads it too, and refuses a pidfile it cannot believe.
    await readTrustedPidfile(probes.system, instance.pidfile);
  } catch (error) {
    if (error instanceof UntrustedPathError) problems.push(error.message);
    // An empty pidfile is what php-fpm leaves when its write failed; start removes it (src/process/lifecycle.ts).
    else if (error instanceof PidfileContentError) {
      if (error.content !== '') problems.push(error.message);
    }
    else if (errnoCode(error) !== undefined) problems.push(describeUnreadablePidfile(probes.system, instance.pidfile, error));
    else throw error;
  }
  const { config } = facts;
  if (config === null) return { facts, problems, warnings };
  const pidLine = await describePidLine(probes, instance, config);
  if (pidLine !== null) problems.push(pidLine);
  for (const pool of config.pools) {
    const listeners: [string, string | null, { file: string; line: number } | null][] = [
      ['listen', pool.listen, pool.listenAt], ['pm.status_listen', pool.statusListen, pool.statusListenAt],
    ];
    for (const [key, listen, at] of listeners) {
      if (listen === null || !listen.startsWith('/')) continue;
      const dir = path.dirname(listen);
      const state = await probes.directory(dir);
      if (state === 'missing') {
        problems.push(`${dir} (the directory of pool '${pool.name}''s ${key} ${listen}${describeWhere(at)}) does not exist, so php-fpm could not bind the socket: create it (mkdir -p ${dir})`);
      } else if (state === 'not-directory') {
        problems.push(`${dir} (the directory of pool '${pool.name}''s ${key} ${listen}${describeWhere(at)}) is not a directory: fix the ${key} path`);
      }
    }
    const from = allowsController(pool);
    if (from !== null) {
      problems.push(
        `pool '${pool.name}'${describeWhere(pool.listenAt)} has ping.path ${pool.pingPath}, but listen.allowed_clients = ${(pool.allowedClients ?? []).join(',')} does not let php-fpm-multi in (it asks the ping from ${from}), so every start would wait out start_timeout: add ${from} to listen.allowed_clients or remove ping.path`,
      );
    }
  }
  problems.push(...(await describeStartOnlyRefusals(probes, config, await probes.configTestChecksAccounts(instance.binary))));
  const stopSeconds = Math.ceil(instance.stopTimeoutMs / 1000);
  if (config.global.processControlTimeoutS === 0) {
    warnings.push(
      `${instance.config} leaves process_control_timeout at 0 (php-fpm's default): a graceful stop or reload ends requests in flight at once instead of letting them finish; add "process_control_timeout = ${stopSeconds}s" to the [global] section of ${instance.config}`,
    );
  }
  return { facts, problems, warnings };
}

/**
 * What php-fpm's config test (-t) passes and its start refuses, leaving a restarted instance down
 * and a reloaded master gone: a user or group the system does not know, an rlimit above what it
 * may set (tryout 2, finding 4).
 */
async function describeStartOnlyRefusals(probes: Probes, config: FpmConfig, testedByFpm: boolean): Promise<string[]> {
  const problems: string[] = [];
  const onlyAtStart = "php-fpm's config test passes, it finds this only at start: a restart would leave the instance down, a reload lose its master";
  for (const pool of config.pools) {
    for (const account of pool.accounts ?? []) {
      // Without root php-fpm ignores the pool's user and group (it runs as the controller's user).
      if ((account.key === 'user' || account.key === 'group') && probes.system.uid !== 0) continue;
      // user, group, listen.owner, listen.group (the keys that also take a number): php-fpm -t of 8.2+ names them itself.
      if (account.numericAllowed && (testedByFpm || /^\d+$/.test(account.name))) continue;
      const answer = await probes.account(account.kind, account.name);
      if (answer === 'cannot-tell' || answer.found === account.name) continue;
      const database = account.kind === 'user' ? 'passwd' : 'group';
      const where = `pool '${pool.name}' (${account.at.file}:${account.at.line})`;
      let why: string;
      if (answer.found !== null) {
        why = `${account.key} names ${account.kind}s by name only, and '${account.name}' is no ${account.kind}'s name (getent ${database} ${account.name} finds ${answer.found}): write ${answer.found}`;
      } else if (account.name.trim() !== account.name) {
        why = `${account.key} names ${account.kind} '${account.name}', spaces included (php-fpm splits the list at commas without trimming), which this system does not know: write the list without spaces, as in "${account.key} = a,b"`;
      } else {
        why = `${account.key} names ${account.kind} '${account.name}', which this system does not know (getent ${database} ${account.name} finds nothing): create the ${account.kind} or fix ${account.key}`;
      }
      problems.push(`${where}: ${why}. php-fpm would refuse to start ("cannot get ${account.kind === 'user' ? 'uid for user' : 'gid for group'}"); ${onlyAtStart}`);
    }
  }
  const bounds = await probes.bounds();
  if (bounds !== null) {
    const limits = [
      ...(config.global.rlimits ?? []).map((limit) => ({ limit, where: '[global]' })),
      ...config.pools.flatMap((pool) => (pool.rlimits ?? []).map((limit) => ({ limit, where: `pool '${pool.name}'` }))),
    ];
    for (const { limit, where } of limits) {
      const why = describeLimitTooHigh(limit, bounds);
      if (why !== null) {
        problems.push(`${limit.key} = ${limit.value} in ${where} (${limit.at.file}:${limit.at.line}): ${why}. php-fpm's setrlimit would fail (EPERM); ${onlyAtStart}`);
      }
    }
  }
  return problems;
}

/** The real path of each unix socket's directory, for listen collisions through symlinks. */
async function resolveSocketPaths(probes: Probes, checked: Map<string, InstancePreflight>): Promise<Map<string, string>> {
  const resolved = new Map<string, string>();
  for (const { facts } of checked.values()) {
    for (const pool of facts.pools) {
      for (const listen of [pool.listen, pool.statusListen]) {
        if (listen === null || !listen.startsWith('/') || resolved.has(listen)) continue;
        resolved.set(listen, path.join(await probes.realDirectory(path.dirname(listen)), path.basename(listen)));
      }
    }
  }
  return resolved;
}

function createProbes(system: System, runDir: string, options: PreflightOptions): Probes {
  return {
    system,
    runDir,
    notFpm: memoize((binary) => describeNotFpm(system, binary, options.path)),
    configTestChecksAccounts: memoize((binary) => configTestChecksAccounts(system, binary, options.path)),
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
    directory: memoize((dir) => describeMissingDirectory(system, dir)),
    realDirectory: memoize(async (dir) => {
      try {
        return await system.realpath(dir);
      } catch {
        return dir; // a missing directory is reported above; compare it as written
      }
    }),
  };
}

/**
 * The preflight of one instance the whole-run preflight skipped (a disabled one that runs, found
 * through its record by restart): its php-fpm facts (pools to wait for) and what start refuses.
 */
export function preflightInstance(system: System, runDir: string, instance: UsableInstance, options: PreflightOptions): Promise<InstancePreflight> {
  return checkInstance(createProbes(system, runDir, options), options, instance);
}

/**
 * What start refuses, found without changing anything: per instance (each usable enabled
 * instance, and the selected ones) its php-fpm config, binary, pidfile and sockets; for the whole
 * run, shared files and colliding listen addresses across every enabled instance.
 */
export async function runPreflight(
  system: System, model: Model, selected: readonly Instance[], options: PreflightOptions,
): Promise<Preflight> {
  const instances = new Map<string, InstancePreflight>();
  let runDirProblem: string | null = null;
  if (model.runDir !== null && options.factsOnly !== true) {
    try {
      await checkRunDirectory(system, model.runDir);
    } catch (error) {
      if (!(error instanceof UntrustedPathError)) throw error;
      runDirProblem = error.message;
    }
  }
  const probes = createProbes(system, model.runDir ?? '', options);
  const selectedSet = new Set(selected);
  for (const instance of model.instances) {
    if (isUsable(instance) && (instance.enabled || selectedSet.has(instance))) {
      instances.set(instance.name, await checkInstance(probes, options, instance));
    }
  }
  const { findListenConflicts } = await import('../php-fpm/listen.js');
  const resolved = await resolveSocketPaths(probes, instances);
  const enabledPools = model.instances.flatMap((instance) => {
    const checked = instance.enabled ? instances.get(instance.name) : undefined;
    return checked === undefined ? [] : [{ name: instance.name, pools: checked.facts.pools }];
  });
  const listen = findListenConflicts(enabledPools, (address) => resolved.get(address) ?? address);
  return { instances, collisions: [...model.conflicts, ...listen.map((conflict) => conflict.message)], runDirProblem };
}

/**
 * Before any process is touched: two enabled instances must not share a config, a pidfile or a
 * listen address (one of them would fail, or worse, take over the other's socket).
 */
export function refuseCollisions(prepared: { collisions: readonly string[] }, verb = 'started'): void {
  if (prepared.collisions.length > 0) {
    throw new NotConfiguredError(
      `instances would collide, so none was ${verb}:\n  ${prepared.collisions.join('\n  ')}\nGive each instance its own config, pidfile and listen addresses.`,
    );
  }
}
