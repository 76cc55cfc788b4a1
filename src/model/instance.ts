// What the controller knows of one declared instance, and of the whole declaration (the Model):
// the shapes every layer above reads, and the names and defaults of the declaration's variables.
// Pure: types and constants only.
import type { Variable } from '../declaration/declaration.js';
import type { SocketDirSettings } from './socket-dir.js';

/** Instances are the variables named `FPM_slot_<name>`. */
export const INSTANCE_VARIABLE_PREFIX = 'FPM_slot_';
/** Settings that apply to every instance unless the instance sets them itself. */
export const DEFAULTS_VARIABLE = 'FPM_defaults';
/** Where records, the lock and default pidfiles live. */
export const RUN_DIR_VARIABLE = 'FPM_run_dir';
/** Read by the OpenRC runscript (sourced there), not by the controller: `yes` runs the supervisor. */
export const SUPERVISE_VARIABLE = 'FPM_supervise';

/**
 * An instance with `user=` keeps its pidfile in `<run dir>/<name>.d/`, owned by that user: php-fpm
 * runs as the user and writes its pidfile itself, and the run directory stays root's.
 */
export const USER_DIRECTORY_SUFFIX = '.d';

export const DEFAULT_START_TIMEOUT_S = 30;
/** Long enough for requests under php.ini's default max_execution_time (30 s) to finish. */
export const DEFAULT_STOP_TIMEOUT_S = 35;

export interface Instance {
  name: string;
  variable: string;
  line: number;
  /** The words exactly as bash sees them (string form: split with shell quoting rules). */
  raw: string[];
  slot: string | null;
  config: string | null;
  /** The php-fpm program: `binary=`, or the slot resolved on this machine; null when neither works. */
  binary: string | null;
  pidfile: string | null;
  prefix: string | null;
  phpIni: string | null;
  iniScanDir: string | null;
  env: Record<string, string>;
  args: string[];
  nice: number | null;
  oomScoreAdj: number | null;
  /**
   * `user=`: the account php-fpm runs as (its master and so its pools); null: the controller's.
   * `group=`: its group; null: the user's primary group. Resolved at run time (getent).
   */
  user: string | null;
  group: string | null;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  enabled: boolean;
  /** Supervisor keys (src/supervisor/): undefined when not given, the supervisor applies its defaults. */
  restartLimit?: RestartLimit | undefined;
  /** `health_restart=N`: restart after N consecutive failed pings of a pool; undefined: off. */
  healthRestart?: number | undefined;
  healthIntervalMs?: number | undefined;
  /**
   * Owner and mode of a missing socket directory the controller creates (socket_dir_owner=,
   * socket_dir_mode=); undefined when neither key is given: root's, DEFAULT_SOCKET_DIR_MODE.
   */
  socketDir?: SocketDirSettings | undefined;
  /** Why this instance cannot be used as declared; empty when it can. */
  problems: string[];
}

export interface Model {
  conf: string;
  runDir: string | null;
  instances: Instance[];
  /** Problems of the file that belong to no single instance (a misspelt FPM_ variable, …). */
  problems: string[];
  /** Enabled instances sharing a config or a pidfile, once per group: no instance may be started while any exist. */
  conflicts: string[];
  /** The instance problems that `conflicts` already reports (check prints each group once). */
  sharingProblems: ReadonlySet<string>;
  /** Variables written in bash's array form, which /bin/sh other than bash cannot source. */
  arrayVariables: Variable[];
}

/** `restart_limit=COUNT/SECONDS`: after COUNT failures within SECONDS the instance is `failed`. */
export interface RestartLimit {
  count: number;
  periodMs: number;
}
