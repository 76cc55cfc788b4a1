// The directories of unix listen paths the controller creates before a launch (/run is a tmpfs:
// a socket directory made by hand is gone after a reboot, and php-fpm's bind then fails): the
// socket_dir_owner= and socket_dir_mode= values, and the decision whether a missing directory may
// be created, from what the file system showed. Pure: src/process/socket-dirs.ts observes and creates.
import { posix as path } from 'node:path';

/** Mode of a created socket directory without socket_dir_mode=, and of every parent created for it. */
export const DEFAULT_SOCKET_DIR_MODE = 0o755;
/** Group or others may write: whoever can write a directory can rename or replace what lies below it. */
const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;
/** The usual names: a user or group name of passwd/group (POSIX portable, plus what Debian allows). */
const ACCOUNT_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

/** `socket_dir_owner=USER[:GROUP]`: GROUP left out keeps the group of the creator (as chown USER does). */
export interface SocketDirOwner {
  user: string;
  group: string | null;
}

export interface SocketDirSettings {
  /** null: the directory stays the controller's (root's). */
  owner: SocketDirOwner | null;
  mode: number;
}

export type Parsed<T> = { value: T } | { problem: string };

export function parseSocketDirOwner(value: string): Parsed<SocketDirOwner> {
  const [user = '', group, ...rest] = value.split(':');
  const problem = 'must be USER or USER:GROUP naming a user (and group) of this system, e.g. www-data:www-data';
  if (rest.length > 0 || !ACCOUNT_NAME_PATTERN.test(user) || (group !== undefined && !ACCOUNT_NAME_PATTERN.test(group))) return { problem };
  return { value: { user, group: group ?? null } };
}

/** 3 or 4 octal digits, as chmod takes them: 0750, 750, 2750. */

export function parseSocketDirMode(value: string): Parsed<number> {
  if (!/^[0-7]{3,4}$/.test(value)) return { problem: 'must be 3 or 4 octal digits, as chmod takes them, e.g. 0750' };
  const mode = Number.parseInt(value, 8);
  // Whoever may write the socket directory can swap the socket, or a symlink in place of it
  // between php-fpm's bind and its chown/chmod by path (as root): only its owner may write it.
  if ((mode & WRITABLE_BY_OTHERS) !== 0) {
    return { problem: 'must not let group or others write (no 0020 or 0002 bit): whoever can write a socket directory can swap the socket php-fpm binds there, or redirect its chown; give the web server access with listen.owner, listen.group and listen.mode instead, e.g. socket_dir_mode=0755' };
  }
  return { value: mode };
}

/**
 * Why a unix listen path with a `.` or `..` component is refused, or null. The kernel resolves
 * `..` after following the symlinks before it, so php-fpm may bind somewhere else than the path
 * read as text (where php-fpm-multi checks and creates directories): the two must be the same.
 */
export function describeDotComponents(listen: string): string | null {
  if (!listen.split('/').some((part) => part === '.' || part === '..')) return null;
  return `has a "." or ".." component, which the kernel resolves after following the symlinks before it, so php-fpm could bind elsewhere than php-fpm-multi checks: write the path without . or .. components (e.g. ${path.normalize(listen)}, if no symlink is on the way)`;
}

export function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** What lstat showed of one path. */
export interface SeenEntry {
  kind: 'file' | 'directory' | 'symlink' | 'other';
  uid: number;
  mode: number;
}

/**
 * What the file system showed around a socket's directory `dir`: the nearest existing ancestor
 * (`dir` itself when it exists) with what stat (following symlinks) says of it, its real path,
 * and each directory of that real path from `/` down to it (lstat: real directories, no symlinks).
 */
export interface SocketDirObservation {
  dir: string;
  /** The nearest existing path of `dir` and its ancestors, as written. */
  existing: string;
  /** stat of `existing` (symlinks followed). */
  existingStat: SeenEntry;
  /** `existing` with its symlinks resolved. */
  realExisting: string;
  /** `/`, then each directory down to `realExisting` included, as lstat shows them. */
  chain: ReadonlyArray<{ path: string; stat: SeenEntry }>;
  /** The symlinks met on the way to `existing` as written, with their owners. */
  symlinks: ReadonlyArray<{ path: string; uid: number }>;
}

/**
 * Whether the socket directory exists, may be created (the directories to make, top first, under
 * the real path of their existing parent, so no symlink is followed while creating), or not.
 */
export type SocketDirPlan =
  | { kind: 'exists' }
  | { kind: 'create'; parent: string; create: string[] }
  /** `present`: something is at the directory's path itself (a file), rather than it missing. */
  | { kind: 'refuse'; why: string; fix: string; present?: true };

/**
 * Decides from an observation. A missing directory is created only under a parent whose every
 * directory belongs to a trusted user (root; the controller's own user when it is not root) and
 * which nobody else may write: under a directory others can write (/tmp, sticky or not) a hostile
 * user could have planted the path, or replace it between our check and php-fpm's bind.
 */
export function planSocketDirectory(seen: SocketDirObservation, trustedUids: readonly number[], owners: string): SocketDirPlan {
  const { dir, existing, existingStat } = seen;
  if (existingStat.kind !== 'directory') {
    return {
      kind: 'refuse',
      why: `${existing} is not a directory${existing === dir ? '' : `, so ${dir} cannot be created below it`}`,
      fix: `remove or rename ${existing}, or choose another listen path`,
      ...(existing === dir ? { present: true as const } : {}),
    };
  }
  if (existing === dir) return { kind: 'exists' };
  const rest = path.relative(existing, dir).split('/');
  const create = rest.map((_, i) => path.join(seen.realExisting, ...rest.slice(0, i + 1)));
  const elsewhere = `choose a listen path under a directory only root may write (e.g. /run/php/<pool>.sock), or create ${dir} yourself`;
  for (const link of seen.symlinks) {
    if (!trustedUids.includes(link.uid)) {
      return {
        kind: 'refuse',
        why: `${link.path} is a symlink owned by uid ${link.uid}, not ${owners}: its owner could point it elsewhere, so ${dir} is not created through it`,
        fix: `write the listen path without the symlink (its real directory is ${seen.realExisting}), or ${elsewhere}`,
      };
    }
  }
  const writer = findOtherWriter(seen.chain, [], trustedUids, seen.realExisting);
  if (writer?.kind === 'not-directory') return { kind: 'refuse', why: `${writer.at} is not a directory`, fix: `remove or rename ${writer.at}, or choose another listen path` };
  if (writer?.kind === 'owner') {
    return {
      kind: 'refuse',
      why: `${writer.at} is owned by uid ${writer.uid}, not ${owners}: its owner could replace what is created below it, so ${dir} is not created there`,
      fix: elsewhere,
    };
  }
  if (writer?.kind === 'writable') {
    return {
      kind: 'refuse',
      why: `${writer.at} is writable by group or others (mode ${formatMode(writer.mode)}): whoever can write it could plant or swap ${dir}, so it is not created there`,
      fix: elsewhere,
    };
  }
  return { kind: 'create', parent: seen.realExisting, create };
}

/** Someone besides the trusted users who may change what lies in a directory: where, and how. */
export type OtherWriter =
  | { kind: 'not-directory'; at: string }
  | { kind: 'owner'; at: string; uid: number }
  | { kind: 'writable'; at: string; mode: number }
  | { kind: 'symlink'; at: string; uid: number };

/**
 * The one rule for "only trusted users may change what lies in `last`": every directory of its
 * real path (`chain`, `/` down to `last`, as lstat shows them) belongs to a trusted user; `last`
 * is writable by nobody else; an ancestor writable by others only when sticky (/tmp: others may
 * add entries there, not rename ours); and every symlink on the path as written belongs to a
 * trusted user (its owner could point it elsewhere). null when nobody else may.
 */
export function findOtherWriter(
  chain: ReadonlyArray<{ path: string; stat: SeenEntry }>, symlinks: ReadonlyArray<{ path: string; uid: number }>, trustedUids: readonly number[], last: string,
): OtherWriter | null {
  for (const link of symlinks) {
    if (!trustedUids.includes(link.uid)) return { kind: 'symlink', at: link.path, uid: link.uid };
  }
  for (const { path: at, stat } of chain) {
    if (stat.kind !== 'directory') return { kind: 'not-directory', at };
    if (!trustedUids.includes(stat.uid)) return { kind: 'owner', at, uid: stat.uid };
    if ((stat.mode & WRITABLE_BY_OTHERS) !== 0 && (at === last || (stat.mode & STICKY) === 0)) return { kind: 'writable', at, mode: stat.mode };
  }
  return null;
}

/** An OtherWriter in words: `/run/php is owned by uid 33, not root`. */
export function describeOtherWriter(writer: OtherWriter, owners: string): string {
  switch (writer.kind) {
    case 'not-directory':
      return `${writer.at} is not a directory`;
    case 'owner':
      return `${writer.at} is owned by uid ${writer.uid}, not ${owners}`;
    case 'writable':
      return `${writer.at} is writable by group or others (mode ${formatMode(writer.mode)})`;
    case 'symlink':
      return `${writer.at} is a symlink owned by uid ${writer.uid}, not ${owners}`;
  }
}
