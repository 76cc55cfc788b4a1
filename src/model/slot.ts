// Slots: `slot=php8.2` names a PHP version, and the places distributions install its php-fpm
// (Gentoo, Debian, Alpine, Remi, $PATH) are tried in order. Pure: whether a candidate is
// executable comes from the caller's probe.
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

export interface InstalledSlot {
  /** `php8.2`. */
  slot: string;
  binary: string;
}

/** What finding installed slots needs: the directory listing and the executable test, both injected. */
export interface SlotProbe {
  /** The names in a directory; [] when it cannot be listed. */
  listDirectory(dir: string): string[];
  isExecutable(file: string): boolean;
}

function compareVersions(a: SlotVersion, b: SlotVersion): number {
  return Number(a.major) - Number(b.major) || Number(a.minor) - Number(b.minor);
}

/**
 * The php-fpm versions installed in the distribution layouts that slot resolution tries (not
 * $PATH, where any directory could hold anything): each version once, with the binary a slot of
 * that version resolves to, in version order.
 */
export function listInstalledSlots(search: SlotSearch, probe: SlotProbe): InstalledSlot[] {
  const versions = new Map<string, SlotVersion>();
  const remember = (major: string | undefined, minor: string | undefined): void => {
    if (major !== undefined && minor !== undefined) versions.set(`${major}.${minor}`, { major, minor });
  };
  for (const dir of ['/usr/lib64', '/usr/lib']) {
    for (const name of probe.listDirectory(`${search.eprefix}${dir}`)) {
      const match = /^php(\d{1,2})\.(\d{1,2})$/.exec(name);
      remember(match?.[1], match?.[2]);
    }
  }
  for (const name of probe.listDirectory(`${search.eprefix}/usr/sbin`)) {
    const match = /^php-fpm(?:(\d{1,2})\.(\d{1,2})|(\d)(\d{1,2}))$/.exec(name);
    remember(match?.[1] ?? match?.[3], match?.[2] ?? match?.[4]);
  }
  for (const name of probe.listDirectory(`${search.eprefix}/opt/remi`)) {
    const match = /^php(\d)(\d{1,2})$/.exec(name);
    remember(match?.[1], match?.[2]);
  }
  const layoutsOnly: SlotSearch = { eprefix: search.eprefix, pathDirs: [] };
  return [...versions.values()].sort(compareVersions).flatMap((version) => {
    const { binary } = resolveSlot(version, layoutsOnly, (file) => probe.isExecutable(file));
    return binary === null ? [] : [{ slot: `php${version.major}.${version.minor}`, binary }];
  });
}

/** The layouts tried for a version, short: the fixed paths, then the program names looked up on $PATH. */
export function describeSlotSearch(version: SlotVersion, search: SlotSearch): string {
  const fixed = listSlotCandidates(version, { eprefix: search.eprefix, pathDirs: [] });
  const names = [`php-fpm${version.major}.${version.minor}`, `php-fpm${version.major}${version.minor}`];
  return `${fixed.join(', ')}, and ${names.join(', ')} on $PATH`;
}
