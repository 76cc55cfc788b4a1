// How php-fpm is run for an instance: the same flags for the config test and the launch, so
// the test checks exactly what will start, and the clean environment both get (which the
// php-fpm config reader also uses for `${VAR}`). Pure.
import type { Instance } from './instance.js';

export interface Invocation {
  program: string;
  args: string[];
  env: Record<string, string>;
}

/** Used when the controller itself has no PATH (OpenRC gives services a clean environment). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * php-fpm starts from a clean environment, as under OpenRC, whoever runs the controller: an
 * admin's interactive shell must not leak PHP_INI_SCAN_DIR or proxies into production pools.
 */
export function buildFpmEnvironment(instance: Instance, path: string | undefined): Record<string, string> {
  const env: Record<string, string> = { PATH: path ?? DEFAULT_PATH };
  if (instance.iniScanDir !== null) env['PHP_INI_SCAN_DIR'] = instance.iniScanDir;
  return { ...env, ...instance.env };
}

function buildFpmArgs(instance: Instance, config: string): string[] {
  const args = ['--fpm-config', config];
  if (instance.prefix !== null) args.push('--prefix', instance.prefix);
  if (instance.phpIni !== null) args.push('--php-ini', instance.phpIni);
  return [...args, ...instance.args];
}

export interface UsableInstance extends Instance {
  binary: string;
  config: string;
  pidfile: string;
}

/**
 * The account an instance with `user=` runs as, resolved (getent) by src/process/account.ts. Only
 * a root controller switches to it; a controller already running as that account runs php-fpm
 * directly.
 */
export interface RunAs {
  user: string;
  uid: number;
  group: string;
  gid: number;
}

/**
 * `setpriv` (util-linux) sets the group, the user's supplementary groups (initgroups(3)) and then
 * the user before it executes php-fpm. node's own spawn `uid`/`gid` options cannot do that:
 * libuv calls setgroups(0, NULL) there, dropping every supplementary group, so a user that
 * reaches its socket directory through a group (www-data) could not bind there.
 */
function runAsUser(command: string[], runAs: RunAs | undefined): string[] {
  if (runAs === undefined) return command;
  return ['setpriv', `--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--init-groups', '--', ...command];
}

function toInvocation(command: string[], env: Record<string, string>): Invocation {
  const [program, ...args] = command;
  return { program: program!, args, env };
}

/** php-fpm's own configuration test, with the instance's flags, as the account the instance runs as. */
export function buildConfigTest(instance: UsableInstance, path: string | undefined, runAs?: RunAs): Invocation {
  const command = runAsUser([instance.binary, '--test', ...buildFpmArgs(instance, instance.config)], runAs);
  return toInvocation(command, buildFpmEnvironment(instance, path));
}

/**
 * The launch: forced into the background (`--daemonize`, whatever the config says) so that the
 * launcher exits only once its master confirmed start-up. nice and oom_score_adj are applied to
 * the launcher before php-fpm runs, so the master and every worker it forks inherit them.
 */
export function buildLaunch(instance: UsableInstance, path: string | undefined, launchPath?: string, runAs?: RunAs): Invocation {
  // `launchPath`: the controller's symlink to the binary (src/process/switch.ts). php-fpm's
  // reload re-executes argv[0], so a master launched through it can be moved to another binary.
  // The user is switched innermost: nice and oom_score_adj below are applied while still root
  // (a negative nice or a lower oom_score_adj needs it), and php-fpm inherits them.
  let command = runAsUser([launchPath ?? instance.binary, ...buildFpmArgs(instance, instance.config), '--pid', instance.pidfile, '--daemonize'], runAs);
  if (instance.nice !== null) command = ['nice', '-n', String(instance.nice), ...command];
  if (instance.oomScoreAdj !== null) {
    // sh only writes the value and execs the command: the words are passed as arguments, never parsed.
    command = ['/bin/sh', '-c', 'echo "$1" >/proc/self/oom_score_adj && shift && exec "$@"', 'php-fpm-multi', String(instance.oomScoreAdj), ...command];
  }
  return toInvocation(command, buildFpmEnvironment(instance, path));
}
