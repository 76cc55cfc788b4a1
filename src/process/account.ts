// The account an instance with `user=` (and `group=`) runs as: looked up with getent (NSS, as
// php-fpm and setpriv do), whether this controller may switch to it (only root may), the
// directory its pidfile lives in (owned by that user), and what that user can reach (check).
import { posix as path } from 'node:path';
import { FpmMultiError } from '../errors.js';
import { USER_DIRECTORY_SUFFIX } from '../model/instance.js';
import { DEFAULT_PATH, type RunAs, type UsableInstance } from '../model/invocation.js';
import { errnoCode, type System } from './system.js';

/** getent answers from the NSS databases at once; a dead LDAP server is not waited on for long. */
const ACCOUNT_LOOKUP_TIMEOUT_MS = 10_000;
/** `test -r` as another user: instant. */
const ACCESS_PROBE_TIMEOUT_MS = 10_000;
/** Where getent lives (Debian, Alpine, Gentoo): the first one that runs answers. */
const GETENT_PROGRAMS = ['/usr/bin/getent', '/bin/getent'];
/** The pidfile directory of a user instance: its user writes, everyone may look (as the run directory). */
export const USER_DIRECTORY_MODE = 0o755;
/**
 * The uid a master of an instance whose account cannot be resolved is expected to run as:
 * (uid_t)-1 is no process's uid, so no process is ever taken for such a master.
 */
export const UNRESOLVED_UID = 4_294_967_295;

export type AccountResolution =
  /** No user=: php-fpm runs as the controller. */
  | { kind: 'controller' }
  /** `switchUser`: the controller is root and switches to it; else it already is that account. */
  | { kind: 'resolved'; runAs: RunAs; switchUser: boolean }
  | { kind: 'problem'; problem: string; needsRoot: boolean };

/** `name:x:id:…` of getent, or null when the name is unknown; throws when getent cannot tell. */
async function getent(system: System, database: 'passwd' | 'group', key: string): Promise<string[] | null> {
  for (const program of GETENT_PROGRAMS) {
    let result;
    try {
      result = await system.run(program, [database, key], { env: { PATH: DEFAULT_PATH }, timeoutMs: ACCOUNT_LOOKUP_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof FpmMultiError) continue; // not installed there
      throw error;
    }
    if (result.exitCode === 2) return null;
    const fields = result.stdout.split('\n')[0]?.split(':') ?? [];
    if (result.exitCode !== 0 || fields.length < 3 || !/^\d+$/.test(fields[2] ?? '')) {
      throw new FpmMultiError(`getent ${database} ${key} failed (${result.timedOut ? 'timed out' : `exit status ${result.exitCode}`}): check the name service (nsswitch.conf)`);
    }
    return fields;
  }
  throw new FpmMultiError(`getent is not installed (looked in ${GETENT_PROGRAMS.join(', ')}): it looks up user= and group=; install it (Debian: libc-bin)`);
}

async function resolve(system: System, user: string, group: string | null): Promise<AccountResolution> {
  let passwd: string[] | null;
  let groupEntry: string[] | null = null;
  try {
    passwd = await getent(system, 'passwd', user);
    if (passwd === null) {
      return { kind: 'problem', needsRoot: false, problem: `user=${user}: no such user (getent passwd ${user} finds nothing): create it (useradd --system ${user}) or fix user=` };
    }
    groupEntry = await getent(system, 'group', group ?? passwd[3] ?? '');
    if (groupEntry === null && group !== null) {
      return { kind: 'problem', needsRoot: false, problem: `group=${group}: no such group (getent group ${group} finds nothing): create it (groupadd --system ${group}) or fix group=` };
    }
  } catch (error) {
    if (!(error instanceof FpmMultiError)) throw error;
    return { kind: 'problem', needsRoot: false, problem: `user=${user}: ${error.message}` };
  }
  const uid = Number(passwd[2]);
  const primaryGid = Number(passwd[3]);
  const gid = groupEntry === null ? primaryGid : Number(groupEntry[2]);
  const runAs: RunAs = { user: passwd[0] ?? user, uid, group: groupEntry?.[0] ?? String(gid), gid };
  if (system.uid === 0) return { kind: 'resolved', runAs, switchUser: true };
  // An ordinary controller can only run php-fpm as itself, in its primary group.
  if (uid === system.uid && gid === primaryGid) return { kind: 'resolved', runAs, switchUser: false };
  const what = uid === system.uid ? `group=${group ?? ''} (not the primary group of ${runAs.user})` : `user=${user} (uid ${uid})`;
  return {
    kind: 'problem', needsRoot: true,
    problem: `${what}: only root can run php-fpm as another user or group, and php-fpm-multi runs as uid ${system.uid}: needs root: run it as root, or remove user=/group= to run php-fpm as yourself`,
  };
}

/**
 * How long an answer is kept: a command asks once for its thousand instances of one user, while
 * the long-running supervisor (one System for days) sees a user created or changed since.
 */
const ACCOUNT_CACHE_MS = 10_000;
const CACHES = new WeakMap<System, Map<string, { answer: Promise<AccountResolution>; atMs: number }>>();

/** The account of `instance`, looked up once per ACCOUNT_CACHE_MS (memoized per System). */
export function resolveAccount(system: System, instance: { user: string | null; group: string | null }): Promise<AccountResolution> {
  const user = instance.user ?? null; // (partial instances in tests leave it out)
  if (user === null) return Promise.resolve({ kind: 'controller' });
  let cache = CACHES.get(system);
  if (cache === undefined) CACHES.set(system, (cache = new Map()));
  const group = instance.group ?? null;
  const key = `${user}:${group ?? ''}`;
  const cached = cache.get(key);
  if (cached !== undefined && system.now() - cached.atMs < ACCOUNT_CACHE_MS) return cached.answer;
  const answer = resolve(system, user, group);
  cache.set(key, { answer, atMs: system.now() });
  return answer;
}

/** Whom a master of this account runs as (its /proc owner): the identity checks compare it. */
export function uidOf(system: System, resolution: AccountResolution): number {
  switch (resolution.kind) {
    case 'controller':
      return system.uid;
    case 'resolved':
      return resolution.runAs.uid;
    case 'problem':
      return UNRESOLVED_UID;
  }
}

/** What php-fpm is run through (setpriv), when the controller switches users; undefined when not. */
export function runAsOf(resolution: AccountResolution): RunAs | undefined {
  return resolution.kind === 'resolved' && resolution.switchUser ? resolution.runAs : undefined;
}

/** Whether the instance's pidfile is the default one in `<run dir>/<name>.d/`, which the controller prepares. */
export function userDirectoryOf(runDir: string, instance: UsableInstance): string | null {
  const dir = path.join(runDir, `${instance.name}${USER_DIRECTORY_SUFFIX}`);
  return path.dirname(instance.pidfile) === dir ? dir : null;
}

/**
 * Makes `<run dir>/<name>.d/` (root's run directory stays root's) a directory of the instance's
 * user, where php-fpm, running as that user, writes its pidfile. Never through a symlink: the run
 * directory is root's, so nobody else can put one there, and lchown does not follow one.
 */
export async function prepareUserDirectory(system: System, runDir: string, instance: UsableInstance, runAs: RunAs): Promise<void> {
  const dir = userDirectoryOf(runDir, instance);
  if (dir === null) return;
  try {
    await system.mkdir(dir, USER_DIRECTORY_MODE);
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
  }
  const stat = await system.lstat(dir);
  if (stat.kind !== 'directory') {
    throw new FpmMultiError(`${dir} (the pidfile directory of user ${runAs.user}) is a ${stat.kind}, not a directory: remove it; php-fpm-multi creates it`);
  }
  if (stat.uid !== runAs.uid || stat.gid !== runAs.gid) await system.chown(dir, runAs.uid, runAs.gid);
}

/** `test -r|-w|-x path` run as the account: its groups and ACLs, not a guess from mode bits. */
export async function canAccess(system: System, runAs: RunAs, test: '-e' | '-r' | '-w' | '-x', file: string): Promise<boolean> {
  const result = await system.run(
    'setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--init-groups', '--', 'test', test, file],
    { env: { PATH: DEFAULT_PATH }, timeoutMs: ACCESS_PROBE_TIMEOUT_MS },
  );
  return result.exitCode === 0;
}

/**
 * Before a launch: the account resolved (or why it cannot be used) and, for user=, its pidfile
 * directory ready. `runAs` is what the launch is run through (undefined: as the controller).
 */
export async function prepareAccount(system: System, runDir: string, instance: UsableInstance): Promise<{ runAs: RunAs | undefined } | { problem: string }> {
  const resolution = await resolveAccount(system, instance);
  if (resolution.kind === 'problem') return { problem: resolution.problem };
  if (resolution.kind === 'resolved') await prepareUserDirectory(system, runDir, instance, resolution.runAs);
  return { runAs: runAsOf(resolution) };
}

/** The gid of a group name (or a number as php-fpm accepts it); null when unknown or not to be told. */
export async function lookUpGid(system: System, name: string): Promise<number | null> {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const entry = await getent(system, 'group', name);
    return entry === null ? null : Number(entry[2]);
  } catch (error) {
    if (error instanceof FpmMultiError) return null;
    throw error;
  }
}

/** The groups a process of the account has after initgroups (`id -G` run as it); null when that cannot be told. */
export async function groupsOfAccount(system: System, runAs: RunAs): Promise<number[] | null> {
  const result = await system.run(
    'setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--init-groups', '--', 'id', '-G'],
    { env: { PATH: DEFAULT_PATH }, timeoutMs: ACCESS_PROBE_TIMEOUT_MS },
  );
  const ids = result.stdout.trim().split(/\s+/);
  return result.exitCode === 0 && ids.every((id) => /^\d+$/.test(id)) ? ids.map(Number) : null;
}
