// The per-instance checks of the preflight (src/process/preflight.ts): an instance's php-fpm
// config read the way php-fpm reads it, and what its start would refuse (binary, pidfile, pid
// line, socket directories, allowed_clients, accounts and rlimits php-fpm -t lets through).
import { posix as path } from 'node:path';
import { describeErrno, FpmMultiError } from '../errors.js';
import type { readFpmConfig as ReadFpmConfig } from '../php-fpm/config/load.js';
import type { FpmConfig, FpmPool } from '../php-fpm/config/types.js';
import { buildFpmEnvironment, buildLaunch, type RunAs, type UsableInstance } from '../model/invocation.js';
import { checkPidfileTrust, PidfileContentError, readTrustedPidfile, UntrustedPathError } from './pidfile.js';
import { NEEDS_ROOT_DETAIL } from './inspect.js';
import { errnoCode, SpawnError, type System } from './system.js';
import { DEFAULT_SOCKET_DIR_MODE, describeDotComponents, formatMode } from '../model/socket-dir.js';
import { describeRefusalOnly, describeSocketDirWriter } from './socket-dirs.js';
import { canAccess, groupsOfAccount, lookUpGid, resolveAccount, runAsOf, uidOf, userDirectoryOf } from './account.js';
import { createProbes, describeExecTooLarge, measureExec, describeLimitTooHigh, type Probes } from './probes.js';

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
  /** What start will do by itself (create a missing socket directory); check prints them, exit stays 0. */
  notes: string[];
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

/** Whether `file` is a directory itself (not through a symlink, which php-fpm would unlink); false when it cannot be told. */
async function isDirectoryAt(system: System, file: string): Promise<boolean> {
  try {
    return (await system.lstat(file)).kind === 'directory';
  } catch {
    return false;
  }
}

/** The warning for a socket directory another user may write, of an instance php-fpm runs as root. */
function describeWritableSocketDir(what: string, writer: string): string {
  return `${what}: ${writer}. php-fpm runs as root and binds, chowns and chmods its socket there by path, so that user could swap in a symlink and have root give any file the socket's owner and mode; restart does not hand its sockets over there (it stops and starts). Fix: a directory only root may write (e.g. leave socket_dir_owner= unset: root 0755), with listen.owner, listen.group and listen.mode giving the web server access to the socket`;
}

export async function checkInstance(probes: Probes, options: PreflightOptions, instance: UsableInstance): Promise<InstancePreflight> {
  const facts = await readFpmFacts(options.readFpmConfig, probes.system, instance, options.path);
  const problems: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  if (options.factsOnly === true) return { facts, problems: facts.problem === null ? [] : [facts.problem], warnings, notes };
  const execLimit = await probes.execLimit();
  if (execLimit !== null) {
    // The launch is the largest exec of an instance (the config test passes fewer arguments).
    const launch = buildLaunch(instance, options.path);
    const tooLarge = describeExecTooLarge(measureExec([launch.program, ...launch.args], launch.env), execLimit);
    if (tooLarge !== null) return { facts, problems: [tooLarge], warnings, notes };
  }
  const notFpm = await probes.notFpm(instance.binary);
  if (notFpm !== null) problems.push(notFpm);
  if (facts.problem !== null) problems.push(facts.problem);
  const clash = describeControllerFile(probes.runDir, instance.pidfile);
  if (clash !== null) problems.push(clash);
  const account = await resolveAccount(probes.system, instance);
  if (account.kind === 'problem') problems.push(account.problem);
  const runAs = runAsOf(account);
  try {
    // Read, not only checked: start reads it too, and refuses a pidfile it cannot believe.
    await readTrustedPidfile(probes.system, instance.pidfile, uidOf(probes.system, account));
  } catch (error) {
    if (error instanceof UntrustedPathError) problems.push(error.message);
    // An empty pidfile is what php-fpm leaves when its write failed; start removes it (src/process/start.ts).
    else if (error instanceof PidfileContentError) {
      if (error.content !== '') problems.push(error.message);
    }
    else if (errnoCode(error) !== undefined) problems.push(describeUnreadablePidfile(probes.system, instance.pidfile, error));
    else throw error;
  }
  const { config } = facts;
  if (runAs !== undefined) problems.push(...(await describeUnreachable(probes, instance, runAs, config)));
  if (config === null) return { facts, problems, warnings, notes };
  if (account.kind === 'resolved') warnings.push(...describeIgnoredPoolAccounts(config, account.runAs));
  const pidLine = await describePidLine(probes, instance, config);
  if (pidLine !== null) problems.push(pidLine);
  // php-fpm as root binds its sockets and chowns and chmods them by path: another user who may
  // write the directory could redirect that to any file. Said once per directory.
  const rootRun = probes.system.uid === 0 && runAs === undefined;
  const warnedDirs = new Set<string>();
  for (const pool of config.pools) {
    const listeners: [string, string | null, { file: string; line: number } | null][] = [
      ['listen', pool.listen, pool.listenAt], ['pm.status_listen', pool.statusListen, pool.statusListenAt],
    ];
    for (const [key, listen, at] of listeners) {
      if (listen === null || !listen.startsWith('/')) continue;
      const dots = describeDotComponents(listen);
      if (dots !== null) {
        problems.push(`pool '${pool.name}''s ${key} ${listen}${describeWhere(at)} ${dots}`);
        continue;
      }
      const dir = path.dirname(listen);
      const plan = await probes.socketDirectory(dir);
      const what = `${dir} (the directory of pool '${pool.name}''s ${key} ${listen}${describeWhere(at)})`;
      if (plan?.kind === 'create') {
        // Not a problem: start creates it (src/process/socket-dirs.ts); check only says so.
        const made = plan.create.length === 1 ? '' : ` (with ${plan.create.slice(0, -1).join(', ')})`;
        const mode = formatMode(instance.socketDir?.mode ?? DEFAULT_SOCKET_DIR_MODE);
        const owner = instance.socketDir?.owner;
        const whose = owner === null || owner === undefined ? '' : `${owner.user}${owner.group === null ? '' : `:${owner.group}`} `;
        notes.push(`${what} does not exist; start will create it${made}, ${whose}${mode}`);
        if (rootRun && owner !== null && owner !== undefined && owner.user !== 'root' && !warnedDirs.has(dir)) {
          warnedDirs.add(dir);
          warnings.push(describeWritableSocketDir(what, `start will give it to ${owner.user}, so that user may write it`));
        }
      } else if (plan?.kind === 'refuse') {
        problems.push(`${what} ${describeRefusalOnly(plan)}`);
      } else if (plan?.kind === 'exists' && rootRun && !warnedDirs.has(dir)) {
        warnedDirs.add(dir);
        const writer = await describeSocketDirWriter(probes.system, dir);
        if (writer !== null) warnings.push(describeWritableSocketDir(what, writer));
      }
      if (plan?.kind === 'exists' && (await isDirectoryAt(probes.system, listen))) {
        // php-fpm unlinks a stale socket or file at its listen path before binding; a directory it
        // cannot unlink, and its bind then fails (tryout 3: a reload's new master died of it).
        problems.push(`pool '${pool.name}''s ${key} ${listen}${describeWhere(at)} is a directory, so php-fpm could not bind its socket there: remove the directory (rmdir ${listen}) or choose another ${key} path`);
      }
    }
    const from = allowsController(pool);
    if (from !== null) {
      problems.push(
        `pool '${pool.name}'${describeWhere(pool.listenAt)} has ping.path ${pool.pingPath}, but listen.allowed_clients = ${(pool.allowedClients ?? []).join(',')} does not let php-fpm-multi in (it asks the ping from ${from}), so every start would wait out start_timeout: add ${from} to listen.allowed_clients or remove ping.path`,
      );
    }
  }
  problems.push(...(await describeStartOnlyRefusals(probes, config, await probes.configTestChecksAccounts(instance.binary), account.kind === 'resolved' ? account.runAs : undefined)));
  problems.push(...(await describeUnknownSocketDirOwner(probes, instance)));
  const stopSeconds = Math.ceil(instance.stopTimeoutMs / 1000);
  if (config.global.processControlTimeoutS === 0) {
    warnings.push(
      `${instance.config} leaves process_control_timeout at 0 (php-fpm's default): a graceful stop or reload ends requests in flight at once instead of letting them finish; add "process_control_timeout = ${stopSeconds}s" to the [global] section of ${instance.config}`,
    );
  }
  const { errorLog, errorLogAt } = config.global;
  if (errorLog.kind === 'file' && errorLogAt === null) {
    // A warning, not a refusal: php-fpm starts fine, but every instance without error_log writes
    // to the same compiled-in default, whose lines `logs` cannot tell apart.
    warnings.push(
      `${instance.config} sets no error_log, so php-fpm writes to its default ${errorLog.path}, which every other instance without error_log shares: add "error_log = /var/log/php-fpm-multi/${instance.name}.log" (rotated by the logrotate snippet php-fpm-multi installs) to the [global] section of ${instance.config}`,
    );
  }
  return { facts, problems, warnings, notes };
}

/**
 * socket_dir_owner= naming a user or group this system does not know: refused even when every
 * socket directory exists now, for after the next reboot start needs it (and would then fail).
 */
async function describeUnknownSocketDirOwner(probes: Probes, instance: UsableInstance): Promise<string[]> {
  const owner = instance.socketDir?.owner;
  if (owner === null || owner === undefined) return [];
  const problems: string[] = [];
  const accounts: ['user' | 'group', string][] = [['user', owner.user]];
  if (owner.group !== null) accounts.push(['group', owner.group]);
  for (const [kind, name] of accounts) {
    const answer = await probes.account(kind, name);
    if (answer === 'cannot-tell' || answer.found !== null) continue;
    const database = kind === 'user' ? 'passwd' : 'group';
    problems.push(
      `socket_dir_owner=${owner.user}${owner.group === null ? '' : `:${owner.group}`} names ${kind} '${name}', which this system does not know (getent ${database} ${name} finds nothing), so start could not give a socket directory it creates to it: create the ${kind} or fix socket_dir_owner=`,
    );
  }
  return problems;
}

/**
 * What php-fpm, run as the instance's user, could not reach, asked as that user (`test -r` under
 * setpriv: its groups and ACLs count): its binary, its config, its error_log, the directories of
 * its unix sockets, an explicit pidfile='s directory. php-fpm would fail at -t or at start.
 */
async function describeUnreachable(probes: Probes, instance: UsableInstance, runAs: RunAs, config: FpmConfig | null): Promise<string[]> {
  const { system } = probes;
  const who = `user ${runAs.user}`;
  const problems: string[] = [];
  let binaryRuns: boolean;
  try {
    binaryRuns = await canAccess(system, runAs, '-x', instance.binary);
  } catch (error) {
    if (!(error instanceof SpawnError)) throw error;
    return [`user=${runAs.user} needs setpriv, which php-fpm-multi runs php-fpm through to switch to that user, and it cannot be run (${error.message}): install util-linux (it provides setpriv)`];
  }
  if (!binaryRuns) {
    problems.push(`${who} (user=) cannot run ${instance.binary}: make it and its directories executable for that user (chmod o+x), or use another binary=`);
  }
  if (!(await canAccess(system, runAs, '-r', instance.config))) {
    problems.push(`${who} (user=) cannot read ${instance.config}, which php-fpm reads as that user: chgrp ${runAs.group} ${instance.config} && chmod g+r ${instance.config} (and make its directories searchable)`);
  }
  if (userDirectoryOf(probes.runDir, instance) === null && !(await canWriteIn(system, runAs, path.dirname(instance.pidfile)))) {
    const dir = path.dirname(instance.pidfile);
    problems.push(`${who} (user=) cannot write ${dir}, where php-fpm writes its pidfile ${instance.pidfile}: remove pidfile= (the default, in <run dir>/${instance.name}.d/, is made for that user) or chown ${runAs.user} ${dir}`);
  }
  if (config === null) return problems;
  const log = config.global.errorLog.kind === 'file' ? config.global.errorLog.path : null;
  if (log !== null && !(await canWriteLog(system, runAs, log))) {
    problems.push(
      `${who} (user=) cannot write the error_log ${log}, which php-fpm opens as that user (its config test fails "failed to open error_log"): ` +
        `touch ${log} && chown ${runAs.user}:${runAs.group} ${log}, or set error_log in the [global] section of ${instance.config} to a file that user can write`,
    );
  }
  const dirs = new Set<string>();
  for (const pool of config.pools) {
    for (const listen of [pool.listen, pool.statusListen]) {
      if (listen !== null && listen.startsWith('/')) dirs.add(path.dirname(listen));
    }
  }
  problems.push(...(await describeSocketOwners(system, runAs, config)));
  for (const dir of dirs) {
    // Missing: start creates it for the user (socket_dir_owner defaults to user=), or it is reported with its pool above.
    if ((await probes.socketDirectory(dir))?.kind !== 'exists') continue;
    if (!(await canWriteIn(system, runAs, dir))) {
      problems.push(`${who} (user=) cannot create sockets in ${dir}, where php-fpm binds as that user: chown ${runAs.user}:${runAs.group} ${dir}, or listen in a directory that user can write`);
    }
  }
  return problems;
}

/**
 * A master that is not root cannot chown its socket to another user, nor to a group it is not in:
 * php-fpm's config test passes, its start fails ("failed to chown() the socket …: Operation not
 * permitted", exit 70; measured with php 8.2). Debian's own pool sets listen.owner = www-data.
 * With listen.acl_users/acl_groups php-fpm sets ACLs instead, on its own socket: nothing to check.
 */
async function describeSocketOwners(system: System, runAs: RunAs, config: FpmConfig): Promise<string[]> {
  if (runAs.uid === 0) return [];
  const problems: string[] = [];
  const startFails = `php-fpm, running as user ${runAs.user} (user=), cannot chown its socket there: its config test passes, its start fails ("failed to chown() the socket", EPERM)`;
  let groups: number[] | null | undefined;
  for (const pool of config.pools) {
    const accounts = pool.accounts ?? [];
    if (accounts.some((account) => account.key.startsWith('listen.acl_'))) continue;
    for (const account of accounts) {
      const where = `pool '${pool.name}' (${account.at.file}:${account.at.line})`;
      if (account.key === 'listen.owner' && account.name !== runAs.user && account.name !== String(runAs.uid)) {
        problems.push(`${where}: listen.owner = ${account.name}, but ${startFails}: remove listen.owner (the socket is then ${runAs.user}'s) or set listen.owner = ${runAs.user}, and let the web server in through listen.group or listen.acl_users`);
      }
      if (account.key === 'listen.group') {
        const gid = await lookUpGid(system, account.name);
        groups ??= await groupsOfAccount(system, runAs);
        if (gid === null || groups === null || groups.includes(gid)) continue; // an unknown group is reported with the pool's accounts
        problems.push(`${where}: listen.group = ${account.name}, a group user ${runAs.user} is not in, and ${startFails}: add the user to it (usermod -aG ${account.name} ${runAs.user}; php-fpm-multi starts php-fpm with the user's groups) or remove listen.group`);
      }
    }
  }
  return problems;
}

/** Creating a file in `dir` needs write and search permission there. */
async function canWriteIn(system: System, runAs: RunAs, dir: string): Promise<boolean> {
  return (await canAccess(system, runAs, '-w', dir)) && (await canAccess(system, runAs, '-x', dir));
}

/** php-fpm opens its error_log for appending, creating it when missing. */
async function canWriteLog(system: System, runAs: RunAs, log: string): Promise<boolean> {
  if (await canAccess(system, runAs, '-e', log)) return canAccess(system, runAs, '-w', log);
  return canWriteIn(system, runAs, path.dirname(log));
}

/**
 * php-fpm not run as root ignores a pool's user and group ("'user' directive is ignored when FPM
 * is not running as root", a notice): every pool runs as the master's user. Said, not refused.
 */
function describeIgnoredPoolAccounts(config: FpmConfig, runAs: RunAs): string[] {
  if (runAs.uid === 0) return [];
  return config.pools.flatMap((pool) => (pool.accounts ?? [])
    .filter((account) => account.key === 'user' && account.name !== runAs.user)
    .map((account) => `pool '${pool.name}' (${account.at.file}:${account.at.line}) sets user = ${account.name}, which php-fpm ignores when it runs as user ${runAs.user} (user=): the pool runs as ${runAs.user}; remove the line, or drop user= from the instance to let php-fpm (root) switch each pool`));
}

/**
 * What php-fpm's config test (-t) passes and its start refuses, leaving a restarted instance down
 * and a reloaded master gone: a user or group the system does not know, an rlimit above what it
 * may set (tryout 2, finding 4).
 */
async function describeStartOnlyRefusals(probes: Probes, config: FpmConfig, testedByFpm: boolean, runAs: RunAs | undefined): Promise<string[]> {
  // A master run as another user is not root: it ignores pool accounts and cannot raise a hard rlimit.
  const asRoot = runAs === undefined ? probes.system.uid === 0 : runAs.uid === 0;
  const problems: string[] = [];
  const onlyAtStart = "php-fpm's config test passes, it finds this only at start: a restart would leave the instance down, a reload lose its master";
  for (const pool of config.pools) {
    for (const account of pool.accounts ?? []) {
      // Without root php-fpm ignores the pool's user and group (it runs as the controller's user).
      if ((account.key === 'user' || account.key === 'group') && !asRoot) continue;
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
  const probed = await probes.bounds();
  const bounds = probed !== null && !asRoot ? { ...probed, canRaise: false } : probed;
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

/**
 * The preflight of one instance the whole-run preflight skipped (a disabled one that runs, found
 * through its record by restart): its php-fpm facts (pools to wait for) and what start refuses.
 */
export function preflightInstance(system: System, runDir: string, instance: UsableInstance, options: PreflightOptions): Promise<InstancePreflight> {
  return checkInstance(createProbes(system, runDir, options.path), options, instance);
}
