import { posix as path } from 'node:path';

/** `php8.2` or `8.2`: the major and minor version of PHP that a slot names. */
const SLOT_PATTERN = /^(?:php)?(\d{1,2})\.(\d{1,2})$/;

export interface SlotVersion {
  major: string;
  minor: string;
}

export function parseSlot(slot: string): SlotVersion | undefined {
  const match = SLOT_PATTERN.exec(slot);
  if (!match) return undefined;
  return { major: match[1]!, minor: match[2]! };
}

export interface SlotSearch {
  /** Gentoo Prefix root; '' on an ordinary system. */
  eprefix: string;
  /** The directories of $PATH, in order. */
  pathDirs: readonly string[];
}

/**
 * Every path where a distribution installs the php-fpm of this version, in the order they are
 * tried: Gentoo's slotted layout first (its versions live side by side), then Debian/Ubuntu,
 * Alpine, Remi's collections on RHEL, and finally the same program names on $PATH.
 */
export function listSlotCandidates(version: SlotVersion, search: SlotSearch): string[] {
  const { major, minor } = version;
  const dotted = `${major}.${minor}`;
  const joined = `${major}${minor}`;
  const underPrefix = (p: string): string => `${search.eprefix}${p}`;
  const fixed = [
    underPrefix(`/usr/lib64/php${dotted}/bin/php-fpm`),
    underPrefix(`/usr/lib/php${dotted}/bin/php-fpm`),
    underPrefix(`/usr/sbin/php-fpm${dotted}`),
    underPrefix(`/usr/sbin/php-fpm${joined}`),
    underPrefix(`/opt/remi/php${joined}/root/usr/sbin/php-fpm`),
  ];
  const onPath = search.pathDirs
    .filter((dir) => path.isAbsolute(dir))
    .flatMap((dir) => [path.join(dir, `php-fpm${dotted}`), path.join(dir, `php-fpm${joined}`)]);
  return [...new Set([...fixed, ...onPath])];
}

export type SlotResolution = { binary: string; tried: string[] } | { binary: null; tried: string[] };

/** The first candidate that is an executable file; `isExecutable` is the only IO, injected. */
export function resolveSlot(
  version: SlotVersion,
  search: SlotSearch,
  isExecutable: (file: string) => boolean,
): SlotResolution {
  const tried: string[] = [];
  for (const candidate of listSlotCandidates(version, search)) {
    tried.push(candidate);
    if (isExecutable(candidate)) return { binary: candidate, tried };
  }
  return { binary: null, tried };
}

/** $PATH split the way execvp reads it; empty entries (the current directory) are ignored. */
export function splitPathVariable(value: string | undefined): string[] {
  return (value ?? '').split(':').filter((dir) => dir !== '');
}
