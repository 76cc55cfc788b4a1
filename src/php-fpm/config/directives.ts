// What each key means to php-fpm (fpm_conf_ini_parser_* and the checks of fpm_conf.c): which keys
// [global] and pools accept, how a section opens or reopens a pool, `$pool`, relative paths from
// the prefix, and the finished global settings and pools with their defaults. Pure.
import { isTcpAddress } from '../listen.js';
import { parseBoolean, parseTimeS } from './expressions.js';
import {
  DEFAULT_ERROR_LOG, DEFAULT_LOCAL_STATE_DIR, DEFAULT_SYSLOG_FACILITY, DEFAULT_PHP_PREFIX, DEFAULT_PING_RESPONSE, DEFAULT_SHARED_STATUS_PATH,
  DEFAULT_SYSLOG_IDENT, FpmConfigError, PROCESS_MANAGERS, type FpmAccount, type FpmCommandLine, type FpmConfigWarning, type FpmGlobalConfig,
  type FpmInclude, type FpmLimit, type FpmPool, type FpmProcessManager, type SourceRef,
} from './types.js';

// Every key php-fpm 8.2 (Linux, systemd, ACL, AppArmor build) accepts; anything else makes it
// refuse the configuration, which the parser reports as a warning rather than an error.
const GLOBAL_OPTIONS = new Set([
  'pid', 'error_log', 'syslog.ident', 'syslog.facility', 'log_buffering', 'log_level', 'log_limit',
  'emergency_restart_threshold', 'emergency_restart_interval', 'process_control_timeout',
  'process.max', 'process.priority', 'daemonize', 'rlimit_files', 'rlimit_core', 'events.mechanism',
  'systemd_interval',
]);
const POOL_OPTIONS = new Set([
  'prefix', 'user', 'group', 'listen', 'listen.backlog', 'listen.acl_users', 'listen.acl_groups',
  'listen.owner', 'listen.group', 'listen.mode', 'listen.allowed_clients', 'process.priority',
  'process.dumpable', 'pm', 'pm.max_children', 'pm.start_servers', 'pm.min_spare_servers',
  'pm.max_spare_servers', 'pm.max_spawn_rate', 'pm.process_idle_timeout', 'pm.max_requests',
  'pm.status_path', 'pm.status_listen', 'ping.path', 'ping.response', 'access.log', 'access.format',
  'slowlog', 'request_slowlog_timeout', 'request_slowlog_trace_depth', 'request_terminate_timeout',
  'request_terminate_timeout_track_finished', 'rlimit_files', 'rlimit_core', 'chroot', 'chdir',
  'catch_workers_output', 'decorate_workers_output', 'clear_env', 'security.limit_extensions',
  'apparmor_hat',
]);
const POOL_ARRAYS = new Set(['env', 'php_value', 'php_admin_value', 'php_flag', 'php_admin_flag', 'access.suppress_path']);
const POOL_NAME_TOKEN = '$pool';
/** ping.path and pm.status_path need '/' and one more character. */
const MIN_REQUEST_PATH_LENGTH = 2;
const REQUEST_PATH_CHARS = /^[A-Za-z0-9/_.~-]+$/;

interface StringSetting {
  value: string;
  at: SourceRef;
}

export interface PoolDraft {
  name: string;
  at: SourceRef;
  strings: Map<string, StringSetting>;
}

/** What php-fpm has read so far, across every file of one configuration. */
export interface ParseState {
  options: FpmCommandLine;
  env: Readonly<Record<string, string | undefined>>;
  constants: Readonly<Record<string, string>>;
  global: Map<string, StringSetting>;
  daemonize: boolean;
  pools: PoolDraft[];
  current: PoolDraft | null;
  files: string[];
  includes: FpmInclude[];
  warnings: FpmConfigWarning[];
  /** UTF-8 bytes of every file read so far, against FPM_CONFIG_TOTAL_MAX_BYTES. */
  bytesRead: number;
}

export function includePrefix(options: FpmCommandLine): string {
  return options.prefix ?? options.phpPrefix ?? DEFAULT_PHP_PREFIX;
}

function stateDirPrefix(options: FpmCommandLine): string {
  return options.prefix ?? options.localStateDir ?? DEFAULT_LOCAL_STATE_DIR;
}

/** fpm_evaluate_full_path without `$prefix`: php joins with '/' and normalises nothing. */
export function resolveFromPrefix(path: string, prefix: string): string {
  return path.startsWith('/') ? path : `${prefix}/${path}`;
}


function expandPoolName(value: string, key: string, state: ParseState, at: SourceRef): string {
  if (!value.includes(POOL_NAME_TOKEN)) return value;
  if (state.current === null) {
    throw new FpmConfigError(at, `'${key} = ${value}' uses $pool in the [global] section`, 'Use $pool only inside a pool section; php-fpm refuses it in [global].');
  }
  return value.split(POOL_NAME_TOKEN).join(state.current.name);
}

export function openSection(name: string, state: ParseState, at: SourceRef): void {
  if (name.toLowerCase() === 'global') {
    state.current = null;
    return;
  }
  const lower = name.toLowerCase();
  const existing = state.pools.find((pool) => pool.name.toLowerCase() === lower);
  if (existing !== undefined) {
    state.current = existing;
    return;
  }
  const pool: PoolDraft = { name, at, strings: new Map() };
  state.pools.push(pool);
  state.current = pool;
}

export function applyEntry(key: string, value: string, state: ParseState, at: SourceRef): void {
  const name = key.toLowerCase();
  const warn = (message: string): void => {
    state.warnings.push({ ...at, message, refusedByPhpFpm: true });
  };
  if (state.current === null) {
    if (!GLOBAL_OPTIONS.has(name)) {
      warn(`php-fpm refuses the unknown [global] entry '${key}'${POOL_OPTIONS.has(name) ? ' (it belongs in a pool section)' : ''}`);
      return;
    }
    if (name === 'daemonize') {
      state.daemonize = parseBoolean(value, key, at);
    } else if (
      name === 'pid' || name === 'error_log' || name === 'syslog.ident' || name === 'syslog.facility' || name === 'events.mechanism' || name === 'process_control_timeout' ||
      name === 'rlimit_files' || name === 'rlimit_core'
    ) {
      state.global.set(name, { value: expandPoolName(value, key, state, at), at });
    }
    return;
  }
  if (!POOL_OPTIONS.has(name)) {
    warn(`php-fpm refuses the unknown entry '${key}' in pool '${state.current.name}'${GLOBAL_OPTIONS.has(name) ? ' (it belongs in [global], which an include may have left behind)' : ''}`);
    return;
  }
  if (name === 'pm') {
    const pm = value.toLowerCase();
    if (!(PROCESS_MANAGERS as readonly string[]).includes(pm)) {
      throw new FpmConfigError(at, `'pm = ${value}' is not a process manager`, 'Write pm = static, pm = dynamic or pm = ondemand.');
    }
    state.current.strings.set(name, { value: pm, at });
    return;
  }
  state.current.strings.set(name, { value: expandPoolName(value, key, state, at), at });
}

export function applyArray(key: string, offset: string, state: ParseState, at: SourceRef): void {
  if (state.current === null) {
    state.warnings.push({ ...at, message: `php-fpm refuses the array '${key}[${offset}]' in [global]`, refusedByPhpFpm: true });
  } else if (!POOL_ARRAYS.has(key)) {
    state.warnings.push({ ...at, message: `php-fpm refuses the unknown directive '${key}[${offset}]'`, refusedByPhpFpm: true });
  }
}

export function finishGlobal(state: ParseState): FpmGlobalConfig {
  const { options } = state;
  const pidSetting = state.global.get('pid');
  const configuredPid = pidSetting?.value ?? options.pidFile ?? null;
  const errorLogSetting = state.global.get('error_log');
  const errorLog = errorLogSetting?.value ?? DEFAULT_ERROR_LOG;
  const processControlTimeout = state.global.get('process_control_timeout');
  return {
    pid: configuredPid === null ? null : resolveFromPrefix(configuredPid, stateDirPrefix(options)),
    pidAt: pidSetting?.at ?? null,
    processControlTimeoutS: processControlTimeout === undefined ? 0 : parseTimeS(processControlTimeout.value),
    errorLog: errorLog.toLowerCase() === 'syslog'
      ? {
        kind: 'syslog', ident: state.global.get('syslog.ident')?.value ?? DEFAULT_SYSLOG_IDENT,
        facility: (state.global.get('syslog.facility')?.value ?? DEFAULT_SYSLOG_FACILITY).toLowerCase(),
      }
      : { kind: 'file', path: resolveFromPrefix(errorLog, stateDirPrefix(options)) },
    errorLogAt: errorLogSetting?.at ?? null,
    daemonize: options.forceDaemonize ?? state.daemonize,
    includes: state.includes,
    rlimits: collectLimits((key) => state.global.get(key)),
  };
}

function collectLimits(get: (key: string) => StringSetting | undefined): FpmLimit[] {
  return (['rlimit_files', 'rlimit_core'] as const).flatMap((key) => {
    const setting = get(key);
    return setting === undefined || setting.value === '' ? [] : [{ key, value: setting.value, at: setting.at }];
  });
}

/**
 * The users and groups a pool names (fpm_unix_resolve_socket_premissions, fpm_unix_conf_wp):
 * user, group, listen.owner and listen.group take a name or a number; the ACL lists are split at
 * commas (strtok: empty items skipped, spaces kept) and each item is looked up as a name only.
 */
function collectAccounts(get: (key: string) => StringSetting | undefined): FpmAccount[] {
  const accounts: FpmAccount[] = [];
  const single: [string, 'user' | 'group'][] = [['user', 'user'], ['group', 'group'], ['listen.owner', 'user'], ['listen.group', 'group']];
  for (const [key, kind] of single) {
    const setting = get(key);
    if (setting !== undefined && setting.value !== '') accounts.push({ key, kind, name: setting.value, numericAllowed: true, at: setting.at });
  }
  const lists: [string, 'user' | 'group'][] = [['listen.acl_users', 'user'], ['listen.acl_groups', 'group']];
  for (const [key, kind] of lists) {
    const setting = get(key);
    if (setting === undefined) continue;
    for (const name of setting.value.split(',')) {
      if (name !== '') accounts.push({ key, kind, name, numericAllowed: false, at: setting.at });
    }
  }
  return accounts;
}

/** ping.path and pm.status_path: php-fpm's checks, or null when it accepts the path (or none). */
function describeRequestPathProblem(path: string | null, minLength: number): string | null {
  if (path === null || path === '') return null;
  if (!path.startsWith('/')) return "must start with '/'";
  if (path.length < minLength) return 'is too short';
  return REQUEST_PATH_CHARS.test(path) ? null : 'may only contain letters, digits and /_-.~';
}


export function finishPool(pool: PoolDraft, state: ParseState): FpmPool {
  const { options } = state;
  const get = (key: string): StringSetting | undefined => pool.strings.get(key);
  const text = (key: string): string | null => get(key)?.value ?? null;
  const rawPrefix = text('prefix');
  const prefix = rawPrefix === null || rawPrefix === '' ? rawPrefix : resolveFromPrefix(rawPrefix, includePrefix(options));
  const resolveListen = (listen: string | null, ownPrefix: string | null): string | null => {
    if (listen === null || listen === '') return null;
    return isTcpAddress(listen) ? listen : resolveFromPrefix(listen, ownPrefix ?? includePrefix(options));
  };
  const listen = resolveListen(text('listen'), prefix);
  if (listen === null) {
    state.warnings.push({ ...pool.at, message: `php-fpm refuses pool '${pool.name}': it has no listen address`, refusedByPhpFpm: true });
  }
  if (get('pm') === undefined) {
    state.warnings.push({ ...pool.at, message: `php-fpm refuses pool '${pool.name}': it has no pm (static, dynamic or ondemand)`, refusedByPhpFpm: true });
  }
  // The status listener is a pool of its own without a prefix (fpm_worker_pool_shared_status_alloc).
  const statusListen = resolveListen(text('pm.status_listen'), null);
  const pingPath = text('ping.path');
  const hasPing = pingPath !== null && pingPath !== '';
  const statusPath = text('pm.status_path');
  const pathProblems: [string, string | null, number][] = [
    ['ping.path', pingPath, MIN_REQUEST_PATH_LENGTH],
    // "/" is enough when the status page has a listener of its own.
    ['pm.status_path', statusPath, get('pm.status_listen') === undefined ? MIN_REQUEST_PATH_LENGTH : 1],
  ];
  for (const [key, path, minLength] of pathProblems) {
    const problem = describeRequestPathProblem(path, minLength);
    if (problem !== null) {
      state.warnings.push({ ...(get(key)?.at ?? pool.at), message: `php-fpm refuses pool '${pool.name}': ${key} '${path ?? ''}' ${problem}`, refusedByPhpFpm: true });
    }
  }
  const listenAt = get('listen')?.at ?? null;
  const allowedClients = text('listen.allowed_clients');
  return {
    name: pool.name,
    file: pool.at.file,
    line: pool.at.line,
    listen,
    listenAt: listen === null ? null : listenAt,
    statusListen,
    statusListenAt: statusListen === null ? null : (get('pm.status_listen')?.at ?? null),
    pingPath,
    pingResponse: hasPing ? (text('ping.response') ?? DEFAULT_PING_RESPONSE) : null,
    statusPath: statusPath ?? (get('pm.status_listen') === undefined ? null : DEFAULT_SHARED_STATUS_PATH),
    pm: (text('pm') as FpmProcessManager | null),
    user: text('user'),
    group: text('group'),
    prefix,
    allowedClients: allowedClients === null || allowedClients === '' ? null : allowedClients.split(',').map((client) => client.trim()).filter((client) => client !== ''),
    accounts: collectAccounts(get),
    rlimits: collectLimits(get),
  };
}
