// The directories of unix listen paths: observed for the preflight (which only reads: `check`
// creates nothing) and created right before a launch (start, restart, the supervisor's restarts,
// reload), for /run is a tmpfs and a socket directory made by hand is gone after a reboot. The
// decision is pure (src/model/socket-dir.ts); here the file system is read and written.
//
// Creation never follows a symlink it did not check: each missing directory is made with
// mkdir(2) under the real path of a parent only trusted users may write, then lstat'ed (a real
// directory of ours) before it is chowned. An existing directory is used as it is.
import { posix as path } from 'node:path';
import type { FpmPool } from '../php-fpm/config/types.js';
import type { UsableInstance } from '../model/invocation.js';
import {
  DEFAULT_SOCKET_DIR_MODE, describeDotComponents, describeOtherWriter, findOtherWriter, formatMode, planSocketDirectory, type SeenEntry, type SocketDirObservation,
  type SocketDirOwner, type SocketDirPlan,
} from '../model/socket-dir.js';
import { lookUpAccount } from './probes.js';
import { errnoCode, type FileStat, type System } from './system.js';

function trustedUids(system: System): readonly number[] {
  // As for pidfiles (src/process/pidfile.ts): a controller that is not root trusts its own files too.
  return system.uid === 0 ? [0] : [0, system.uid];
}

function ownerNames(system: System): string {
  return system.uid === 0 ? 'root' : `root or uid ${system.uid}`;
}

function seen(stat: FileStat): SeenEntry {
  return { kind: stat.kind, uid: stat.uid, mode: stat.mode };
}

/** Each path from `/` down to `dir`: `/`, `/run`, `/run/php`. */
function prefixesOf(dir: string): string[] {
  const parts = dir.split('/').filter((part) => part !== '');
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}

/** One unix listen path's directory and the pool (and key) it serves, for messages. */
export interface SocketDirUse {
  dir: string;
  pool: string;
  key: string;
  listen: string;
}

/** The directories of an instance's unix listen paths, each once (its first user named). */
export function listSocketDirectories(pools: readonly FpmPool[]): SocketDirUse[] {
  const uses = new Map<string, SocketDirUse>();
  for (const pool of pools) {
    for (const [key, listen] of [['listen', pool.listen], ['pm.status_listen', pool.statusListen]] as const) {
      if (listen === null || !listen.startsWith('/')) continue;
      const dir = path.dirname(path.normalize(listen));
      if (!uses.has(dir)) uses.set(dir, { dir, pool: pool.name, key, listen });
    }
  }
  return [...uses.values()];
}

/**
 * What the file system shows around `dir` (see SocketDirObservation); null when it cannot be
 * told (EACCES as an ordinary user: php-fpm, as root, may still reach it, and reports itself).
 */
export async function observeSocketDirectory(system: System, dir: string): Promise<SocketDirObservation | null> {
  let existing = dir;
  let existingStat: SeenEntry;
  for (;;) {
    try {
      existingStat = seen(await system.stat(existing));
      break;
    } catch (error) {
      const code = errnoCode(error);
      if (code === undefined) throw error;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return null;
    }
    try {
      // A dangling symlink: stat says ENOENT, but something is there that mkdir would not replace.
      const stat = await system.lstat(existing);
      existingStat = seen(stat);
      break;
    } catch (error) {
      const code = errnoCode(error);
      if (code === undefined) throw error;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return null;
    }
    existing = path.dirname(existing);
  }
  const symlinks: Array<{ path: string; uid: number }> = [];
  const chain: Array<{ path: string; stat: SeenEntry }> = [];
  let realExisting = existing;
  try {
    for (const prefix of prefixesOf(existing)) {
      const stat = await system.lstat(prefix);
      if (stat.kind === 'symlink') symlinks.push({ path: prefix, uid: stat.uid });
    }
    if (existingStat.kind === 'directory') {
      realExisting = await system.realpath(existing);
      for (const prefix of prefixesOf(realExisting)) chain.push({ path: prefix, stat: seen(await system.lstat(prefix)) });
    }
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return null; // changed while looked at, or not ours to see: php-fpm's bind decides
  }
  return { dir, existing, existingStat, realExisting, chain, symlinks };
}

/** Observes and decides; null when it cannot be told. */
export async function planSocketDirectoryOf(system: System, dir: string): Promise<SocketDirPlan | null> {
  const observation = await observeSocketDirectory(system, dir);
  return observation === null ? null : planSocketDirectory(observation, trustedUids(system), ownerNames(system));
}

/**
 * Who besides root (the controller's own user when it is not root) may change what lies in the
 * existing directory `dir`, in words (`/run/php is owned by uid 33, not root`); null when
 * nobody else may. Whoever may can rename a symlink over a name created
 * there between its creation and a chown or chmod by path: root then changes the symlink's
 * target. Unknown (it cannot be looked at, or it is not there) counts as someone else.
 */
export async function describeSocketDirWriter(system: System, dir: string): Promise<string | null> {
  const seenDir = await observeSocketDirectory(system, dir);
  if (seenDir === null) return `who may write ${dir} cannot be told`;
  if (seenDir.existing !== dir || seenDir.existingStat.kind !== 'directory') return `${dir} is not an existing directory`;
  const writer = findOtherWriter(seenDir.chain, seenDir.symlinks, trustedUids(system), seenDir.realExisting);
  return writer === null ? null : describeOtherWriter(writer, ownerNames(system));
}

/** What a problem with a socket directory says: which directory, for which pool and listen line. */
export function describeSocketDirUse(use: SocketDirUse, instance: string): string {
  return `${use.dir} (the directory of pool '${use.pool}''s ${use.key} ${use.listen} of instance '${instance}')`;
}

/** A missing socket directory the controller will not create, in words that say what to do. */
export function describeRefusal(use: SocketDirUse, instance: string, plan: { why: string; fix: string; present?: true }): string {
  return `${describeSocketDirUse(use, instance)} ${describeRefusalOnly(plan)}`;
}

/** The words after the directory's name, shared with the preflight's problem. */
export function describeRefusalOnly(plan: { why: string; fix: string; present?: true }): string {
  const what = plan.present === true ? 'cannot hold a socket' : 'does not exist, and php-fpm-multi will not create it';
  return `${what}: ${plan.why}. Fix: ${plan.fix}`;
}

/** Numeric owner of created socket directories: -1 keeps what mkdir gave (chown's convention). */
interface ResolvedOwner {
  uid: number;
  gid: number;
  label: string;
}

/** Why socket_dir_owner= cannot be used (an unknown user or group); null when it can or cannot be told. */
export async function resolveSocketDirOwner(system: System, owner: SocketDirOwner | null): Promise<ResolvedOwner | { problem: string }> {
  const rootName = (id: number): string => (id === 0 ? 'root' : String(id));
  if (owner === null) return { uid: -1, gid: -1, label: `${rootName(system.uid)}:${rootName(system.uid)}` };
  const user = await lookUpAccount(system, 'user', owner.user);
  const unknown = (kind: 'user' | 'group', name: string, database: string): { problem: string } => ({
    problem: `socket_dir_owner=${owner.user}${owner.group === null ? '' : `:${owner.group}`} names ${kind} '${name}', which this system does not know (getent ${database} ${name} finds nothing): create the ${kind} or fix socket_dir_owner=`,
  });
  if (user === 'cannot-tell') return { problem: `socket_dir_owner=${owner.user}: cannot look the user up (no getent answered); install getent or remove socket_dir_owner=` };
  if (user.found === null || user.id === undefined) return unknown('user', owner.user, 'passwd');
  if (owner.group === null) return { uid: user.id, gid: -1, label: `${owner.user}:${rootName(system.uid)}` };
  const group = await lookUpAccount(system, 'group', owner.group);
  if (group === 'cannot-tell') return { problem: `socket_dir_owner=…:${owner.group}: cannot look the group up (no getent answered); install getent or remove the group` };
  if (group.found === null || group.id === undefined) return unknown('group', owner.group, 'group');
  return { uid: user.id, gid: group.id, label: `${owner.user}:${owner.group}` };
}

/** What a start does about the socket directories of one instance: lines to print, or why it must not launch. */
export type SocketDirResult = { ok: true; created: string[] } | { ok: false; problem: string };

/**
 * Creates every missing directory of the instance's unix listen paths, right before its launch.
 * Parents made on the way are root's (the controller's) with DEFAULT_SOCKET_DIR_MODE; the socket's
 * own directory gets socket_dir_owner= and socket_dir_mode=. Refuses (nothing launched) what the
 * preflight reports too, and a path that changed under it in between.
 */
export async function ensureSocketDirectories(system: System, instance: UsableInstance, pools: readonly FpmPool[]): Promise<SocketDirResult> {
  const settings = instance.socketDir ?? { owner: null, mode: DEFAULT_SOCKET_DIR_MODE };
  for (const pool of pools) {
    for (const [key, listen] of [['listen', pool.listen], ['pm.status_listen', pool.statusListen]] as const) {
      const dots = listen === null || !listen.startsWith('/') ? null : describeDotComponents(listen);
      if (dots !== null) return { ok: false, problem: `pool '${pool.name}''s ${key} ${listen} ${dots}; nothing was launched` };
    }
  }
  const created: string[] = [];
  let owner: ResolvedOwner | null = null;
  for (const use of listSocketDirectories(pools)) {
    const plan = await planSocketDirectoryOf(system, use.dir);
    if (plan === null || plan.kind === 'exists') continue;
    if (plan.kind === 'refuse') return { ok: false, problem: describeRefusal(use, instance.name, plan) };
    if (owner === null) {
      const resolved = await resolveSocketDirOwner(system, settings.owner);
      if ('problem' in resolved) return { ok: false, problem: resolved.problem };
      owner = resolved;
    }
    for (const [index, dir] of plan.create.entries()) {
      const last = index === plan.create.length - 1;
      const mode = last ? settings.mode : DEFAULT_SOCKET_DIR_MODE;
      try {
        await system.mkdir(dir, mode);
      } catch (error) {
        const code = errnoCode(error);
        if (code === undefined) throw error;
        if (code === 'EEXIST') {
          // Made by someone else in the meantime (another start): used as it is only if it is a
          // real directory (lstat: never through a symlink) that only a trusted user may write.
          const there = await system.lstat(dir);
          const why = there.kind !== 'directory'
            ? `it is a ${there.kind}${there.kind === 'symlink' ? ` owned by uid ${there.uid}` : ''}`
            : !trustedUids(system).includes(there.uid)
              ? `it is owned by uid ${there.uid}, not ${ownerNames(system)}`
              : (there.mode & 0o022) !== 0 ? `it is writable by group or others (mode ${formatMode(there.mode)})` : null;
          if (why === null) continue;
          return { ok: false, problem: `${describeSocketDirUse(use, instance.name)}: ${dir} appeared while it was being created, and is not a directory to use (${why}); nothing was launched. Remove ${dir} if you did not make it, and start again` };
        }
        return { ok: false, problem: `${describeSocketDirUse(use, instance.name)}: cannot create ${dir} (mkdir: ${code}); nothing was launched. Create it yourself (mkdir -p ${use.dir}) or fix what refuses` };
      }
      // Verified before it is given away: a real directory, made by us (not something swapped in).
      const made = await system.lstat(dir);
      if (made.kind !== 'directory' || made.uid !== system.uid) {
        return { ok: false, problem: `${describeSocketDirUse(use, instance.name)}: ${dir} is not the directory php-fpm-multi just created (it is a ${made.kind} of uid ${made.uid}); nothing was launched. Remove ${dir} and start again` };
      }
      let label = `${system.uid === 0 ? 'root:root' : `${system.uid}:${made.gid}`}`;
      if (last && (owner.uid !== -1 || owner.gid !== -1)) {
        try {
          await system.chown(dir, owner.uid, owner.gid);
        } catch (error) {
          const code = errnoCode(error);
          if (code === undefined) throw error;
          return { ok: false, problem: `${describeSocketDirUse(use, instance.name)}: created ${dir}, but cannot give it to ${owner.label} (chown: ${code}); nothing was launched. Run php-fpm-multi as root, or remove socket_dir_owner=` };
        }
        label = owner.label;
      }
      created.push(`created ${dir} (${label} ${formatMode(mode)}) for pool '${use.pool}' of instance '${instance.name}'`);
    }
  }
  return { ok: true, created };
}
