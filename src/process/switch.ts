// The live slot switch: every master is launched through a path the controller owns, a symlink
// `<run dir>/<name>.php-fpm` to the slot's real binary. php-fpm's reload (SIGUSR2) re-executes
// `execvp(argv[0], argv)`, looking that path up again: repointing the symlink before the signal
// moves a running master to another binary without closing its listening sockets (they pass
// through FPM_SOCKETS; connections wait in the backlog meanwhile). /proc/PID/exe shows the real
// binary the symlink named, so identity keeps comparing real paths; the record keeps the launch
// path, and what the launch was given that a reload cannot change (php-fpm keeps its arguments
// and environment across re-execution).
import { posix as path } from 'node:path';
import type { UsableInstance } from '../model/invocation.js';
import type { System } from './system.js';

/** The suffix of the launch symlink in the run directory (`<name>.php-fpm`). */
const LAUNCH_LINK_SUFFIX = '.php-fpm';

/** The path the controller launches an instance's php-fpm through. */
export function launchLinkPath(runDir: string, name: string): string {
  return path.join(runDir, `${name}${LAUNCH_LINK_SUFFIX}`);
}

/**
 * Points the launch symlink at the declared `binary` (absolute), atomically: php-fpm
 * re-executing at that moment finds the old or the new binary, never none. The declared path,
 * not its resolved one: the launch runs exactly what it ran before the symlink existed (a #!
 * wrapper stays the wrapper), and identity compares /proc/PID/exe with the resolved path as before.
 */
export async function pointLaunchLink(system: System, runDir: string, name: string, binary: string): Promise<string> {
  const link = launchLinkPath(runDir, name);
  await system.replaceSymlink(link, binary);
  return link;
}

/** What a launch gave php-fpm that survives its reloads: only a restart applies an edit of these. */
export interface LaunchSettings {
  prefix: string | null;
  php_ini: string | null;
  ini_scan_dir: string | null;
  env: Record<string, string>;
  args: string[];
  nice: number | null;
  oom_score_adj: number | null;
  /** user= and group=; absent in records written before they existed (then not compared). */
  user?: string | null;
  group?: string | null;
}

/** The settings a launch of `instance` gives php-fpm, named by their declaration keys. */
export function launchSettingsOf(instance: UsableInstance): LaunchSettings {
  return {
    prefix: instance.prefix,
    php_ini: instance.phpIni,
    ini_scan_dir: instance.iniScanDir,
    env: { ...instance.env },
    args: [...instance.args],
    nice: instance.nice,
    oom_score_adj: instance.oomScoreAdj,
    user: instance.user ?? null,
    group: instance.group ?? null,
  };
}

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

/**
 * The keys whose declared value differs from what the running master was launched with (pure).
 * A reload keeps the old values: these need `restart`. Unknown (an older record): none named.
 */
export function changedLaunchKeys(launched: LaunchSettings | undefined, declared: LaunchSettings): string[] {
  if (launched === undefined) return [];
  const changed: string[] = [];
  if (launched.prefix !== declared.prefix) changed.push('prefix');
  if (launched.php_ini !== declared.php_ini) changed.push('php_ini');
  if (launched.ini_scan_dir !== declared.ini_scan_dir) changed.push('ini_scan_dir');
  if (!sameEnv(launched.env, declared.env)) changed.push('env');
  if (launched.args.length !== declared.args.length || launched.args.some((arg, i) => arg !== declared.args[i])) changed.push('args');
  if (launched.nice !== declared.nice) changed.push('nice');
  if (launched.oom_score_adj !== declared.oom_score_adj) changed.push('oom_score_adj');
  // A re-executed master keeps its user and groups: a new account takes a restart.
  if (launched.user !== undefined && launched.user !== declared.user) changed.push('user');
  if (launched.group !== undefined && launched.group !== declared.group) changed.push('group');
  return changed;
}

/** The note a reload adds when keys only a restart applies were edited since the launch. */
export function describeRestartNeeded(name: string, changed: readonly string[]): string {
  if (changed.length === 0) return '';
  const keys = changed.join(', ');
  return `; ${keys} changed since php-fpm was started: a reload keeps php-fpm's arguments and environment, ` +
    `so ${changed.length === 1 ? 'it takes' : 'they take'} effect only on php-fpm-multi restart ${name}`;
}

/** Whether a value read from a record is launch settings (records are read, never trusted blindly). */
export function isLaunchSettings(value: unknown): value is LaunchSettings {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const stringOrNull = (x: unknown): boolean => x === null || typeof x === 'string';
  const intOrNull = (x: unknown): boolean => x === null || Number.isInteger(x);
  return stringOrNull(v['prefix']) && stringOrNull(v['php_ini']) && stringOrNull(v['ini_scan_dir']) &&
    typeof v['env'] === 'object' && v['env'] !== null && !Array.isArray(v['env']) &&
    Object.values(v['env'] as Record<string, unknown>).every((x) => typeof x === 'string') &&
    Array.isArray(v['args']) && (v['args'] as unknown[]).every((x) => typeof x === 'string') &&
    intOrNull(v['nice']) && intOrNull(v['oom_score_adj']) &&
    (v['user'] === undefined || stringOrNull(v['user'])) && (v['group'] === undefined || stringOrNull(v['group']));
}
