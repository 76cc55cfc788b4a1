// From the variables bash would hold to the instances the controller runs (buildModel): the run
// directory, defaults merged under each instance, the php-fpm binary of a slot, stray FPM_
// variables and shared files. Pure: the only IO, whether files exist, comes through FileProbe.
import { posix as path } from 'node:path';
import type { Declaration, Variable } from '../declaration/declaration.js';
import { reportSharedFiles } from './conflicts.js';
import {
  DEFAULT_START_TIMEOUT_S, DEFAULT_STOP_TIMEOUT_S, DEFAULTS_VARIABLE, INSTANCE_VARIABLE_PREFIX, RUN_DIR_VARIABLE,
  type Instance, type Model, SUPERVISE_VARIABLE, USER_DIRECTORY_SUFFIX,
} from './instance.js';
import { MAX_INSTANCE_WORDS, parseSettings, readWords, type Settings } from './keys.js';
import { describeSlotSearch, listInstalledSlots, parseSlot, resolveSlot, splitPathVariable } from './slot.js';
import { formatSuggestion } from './suggest.js';
import { DEFAULT_SOCKET_DIR_MODE, type SocketDirSettings } from './socket-dir.js';

const KNOWN_PLAIN_VARIABLES = [DEFAULTS_VARIABLE, RUN_DIR_VARIABLE, SUPERVISE_VARIABLE];
const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9_]+$/;

/** The only IO the model needs, injected so that building it stays pure. */
export interface FileProbe {
  isExecutable(file: string): boolean;
  isFile(file: string): boolean;
  /** The names in a directory, [] when it cannot be listed: to name the installed slots. */
  listDirectory(dir: string): string[];
}

export interface ModelContext {
  env: Readonly<Record<string, string | undefined>>;
  uid: number;
  probe: FileProbe;
}

function describeVariable(variable: Variable): string {
  return `${variable.name} (line ${variable.line})`;
}

/**
 * The run directory of a declaration file that does not set FPM_run_dir, for a controller of
 * `uid`; null for an ordinary user without XDG_RUNTIME_DIR. One run directory per declaration
 * file, so that several services (php-fpm, php-fpm.web) can each have instances with the same names.
 */
export function defaultRunDir(file: string, env: Readonly<Record<string, string | undefined>>, uid: number): string | null {
  const service = path.basename(file);
  if (uid === 0) return `${env['EPREFIX'] ?? ''}/run/php-fpm-multi/${service}`;
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && path.isAbsolute(runtime)) return path.join(runtime, 'php-fpm-multi', service);
  return null;
}

function chooseRunDir(
  declaration: Declaration, context: ModelContext, problems: string[],
): string | null {
  const declared = declaration.variables.find((v) => v.name === RUN_DIR_VARIABLE);
  if (declared) {
    const value = declared.value.kind === 'string' ? declared.value.value : '';
    if (declared.value.kind === 'string' && path.isAbsolute(value)) return path.normalize(value);
    problems.push(`${describeVariable(declared)}: must be a string holding an absolute directory path`);
    return null;
  }
  const runDir = defaultRunDir(declaration.file, context.env, context.uid);
  if (runDir !== null) return runDir;
  problems.push(
    `no run directory: as an ordinary user the controller uses $XDG_RUNTIME_DIR/php-fpm-multi, and XDG_RUNTIME_DIR is not set; set ${RUN_DIR_VARIABLE}="/some/dir" in ${declaration.file}`,
  );
  return null;
}

function findStrayVariables(declaration: Declaration): string[] {
  return declaration.variables.flatMap((variable) => {
    const { name } = variable;
    if (name.startsWith(INSTANCE_VARIABLE_PREFIX) || KNOWN_PLAIN_VARIABLES.includes(name)) return [];
    const looksLikeOurs = name.toUpperCase().startsWith('FPM_') || name.toLowerCase().startsWith('fpm_slot');
    if (!looksLikeOurs) return [];
    const hint = formatSuggestion(name, [...KNOWN_PLAIN_VARIABLES, `${INSTANCE_VARIABLE_PREFIX}${name.replace(/^.*_/, '')}`]);
    return [
      `${describeVariable(variable)}: not a variable php-fpm-multi knows${hint}; instances are named ${INSTANCE_VARIABLE_PREFIX}<name>, defaults go in ${DEFAULTS_VARIABLE}`,
    ];
  });
}

function resolveBinary(settings: Settings, context: ModelContext, problems: string[]): string | null {
  const { probe, env } = context;
  if (settings.binary !== undefined) {
    if (probe.isExecutable(settings.binary)) return settings.binary;
    problems.push(`binary=${settings.binary}: not an executable file; install php-fpm there or fix the path`);
    return null;
  }
  if (settings.slot === undefined) {
    if (settings.given.has('slot') || settings.given.has('binary')) return null; // its bad value is reported
    problems.push('neither slot= nor binary= is set; add e.g. "slot=php8.2"');
    return null;
  }
  const version = parseSlot(settings.slot);
  if (!version) return null; // already reported as a bad slot value
  const search = { eprefix: env['EPREFIX'] ?? '', pathDirs: splitPathVariable(env['PATH']) };
  const resolution = resolveSlot(version, search, (file) => probe.isExecutable(file));
  if (resolution.binary === null) {
    const dotted = `${version.major}.${version.minor}`;
    const installed = listInstalledSlots(search, probe);
    const alternatives = installed.length === 0
      ? 'no php-fpm of any version is installed where php-fpm-multi looks; install one (Debian: apt-get install php' + dotted + '-fpm)'
      : `installed slots: ${installed.map((i) => `${i.slot} (${i.binary})`).join(', ')}; use one of them, or install php-fpm ${dotted}`;
    problems.push(
      `slot=${settings.slot}: php-fpm ${dotted} is not installed; ${alternatives}, or set binary=/path/to/php-fpm (looked for ${describeSlotSearch(version, search)})`,
    );
  }
  return resolution.binary;
}

/**
 * `<run dir>/<name>.pid`; with user=, `<run dir>/<name>.d/<name>.pid`: php-fpm runs as that
 * user and must write its pidfile in a directory of its own, while the run directory stays root's.
 */
export function defaultPidfile(runDir: string | null, name: string, asUser: boolean): string | null {
  if (runDir === null) return null;
  return asUser ? path.join(runDir, `${name}${USER_DIRECTORY_SUFFIX}`, `${name}.pid`) : path.join(runDir, `${name}.pid`);
}

/** The instance's own settings win over the defaults, key by key and env name by env name. */
function mergeDefaults(own: Settings, defaults: Settings): Settings {
  const ownSet = Object.fromEntries(Object.entries(own).filter(([, value]) => value !== undefined));
  return {
    ...defaults, ...ownSet, given: new Set([...defaults.given, ...own.given]), env: new Map([...defaults.env, ...own.env]),
  };
}

function buildInstance(
  variable: Variable, defaults: Settings, runDir: string | null, declaration: Declaration, context: ModelContext,
): Instance {
  const name = variable.name.slice(INSTANCE_VARIABLE_PREFIX.length);
  const problems: string[] = [];
  if (!INSTANCE_NAME_PATTERN.test(name)) {
    problems.push(`the instance name after ${INSTANCE_VARIABLE_PREFIX} must be letters, digits or _`);
  }
  const read = readWords(variable, declaration.file);
  const raw = 'words' in read ? read.words : [];
  if ('problem' in read) problems.push(read.problem);
  const settings = mergeDefaults(parseSettings(raw, variable, declaration.file, problems, false), defaults);
  // Over the word limit nothing was read: "config= is missing" and the slot search would only add noise.
  const readable = 'words' in read && raw.length <= MAX_INSTANCE_WORDS;
  if (settings.config === undefined && readable && !settings.given.has('config')) {
    problems.push('config= is missing; add e.g. "config=/etc/php/8.2/fpm/php-fpm.conf"');
  } else if (settings.config !== undefined && !context.probe.isFile(settings.config)) {
    problems.push(`config=${settings.config}: no such file; create it or fix the path`);
  }
  const binary = readable ? resolveBinary(settings, context, problems) : null;
  if (settings.group !== undefined && settings.user === undefined) {
    problems.push(`group=${settings.group} needs user=: php-fpm-multi changes the group only together with the user; add user=NAME`);
  }
  const pidfile = settings.pidfile ?? defaultPidfile(runDir, name, settings.user !== undefined);
  return {
    name,
    variable: variable.name,
    line: variable.line,
    raw,
    slot: settings.slot ?? null,
    config: settings.config ?? null,
    binary,
    pidfile,
    prefix: settings.prefix ?? null,
    phpIni: settings.php_ini ?? null,
    iniScanDir: settings.ini_scan_dir ?? null,
    env: Object.fromEntries(settings.env),
    args: settings.args ?? [],
    nice: settings.nice ?? null,
    oomScoreAdj: settings.oom_score_adj ?? null,
    user: settings.user ?? null,
    group: settings.group ?? null,
    startTimeoutMs: (settings.start_timeout ?? DEFAULT_START_TIMEOUT_S) * 1000,
    stopTimeoutMs: (settings.stop_timeout ?? DEFAULT_STOP_TIMEOUT_S) * 1000,
    enabled: settings.enabled ?? true,
    restartLimit: settings.restart_limit,
    healthRestart: settings.health_restart,
    healthIntervalMs: settings.health_interval === undefined ? undefined : settings.health_interval * 1000,
    ...socketDirOf(settings),
    problems,
  };
}

/**
 * The owner and mode of socket directories start creates. With user= and no socket_dir_owner=,
 * they are the user's (and group='s): php-fpm runs as that user and must bind its sockets there.
 */
function socketDirOf(settings: Settings): { socketDir?: SocketDirSettings } {
  const owner = settings.socket_dir_owner ?? (settings.user === undefined ? undefined : { user: settings.user, group: settings.group ?? null });
  if (owner === undefined && settings.socket_dir_mode === undefined) return {};
  return { socketDir: { owner: owner ?? null, mode: settings.socket_dir_mode ?? DEFAULT_SOCKET_DIR_MODE } };
}

/** Each path probed once per model: a thousand instances of one slot try the same candidates. */
function cacheProbe(probe: FileProbe): FileProbe {
  const executable = new Map<string, boolean>();
  const file = new Map<string, boolean>();
  const listings = new Map<string, string[]>();
  const remember = (cache: Map<string, boolean>, path: string, ask: (path: string) => boolean): boolean => {
    let answer = cache.get(path);
    if (answer === undefined) cache.set(path, (answer = ask(path)));
    return answer;
  };
  return {
    isExecutable: (path) => remember(executable, path, (p) => probe.isExecutable(p)),
    isFile: (path) => remember(file, path, (p) => probe.isFile(p)),
    listDirectory: (dir) => {
      let names = listings.get(dir);
      if (names === undefined) listings.set(dir, (names = probe.listDirectory(dir)));
      return names;
    },
  };
}

/** From the variables bash would hold to the instances the controller runs. No IO but `context.probe`. */
export function buildModel(declaration: Declaration, uncachedContext: ModelContext): Model {
  const context: ModelContext = { ...uncachedContext, probe: cacheProbe(uncachedContext.probe) };
  const problems = findStrayVariables(declaration);
  const runDir = chooseRunDir(declaration, context, problems);
  const defaultsVariable = declaration.variables.find((v) => v.name === DEFAULTS_VARIABLE);
  let defaults: Settings = { given: new Set(), env: new Map() };
  if (defaultsVariable) {
    const read = readWords(defaultsVariable, declaration.file);
    const defaultProblems: string[] = [];
    if ('words' in read) defaults = parseSettings(read.words, defaultsVariable, declaration.file, defaultProblems, true);
    else defaultProblems.push(read.problem);
    problems.push(...defaultProblems.map((problem) => `${describeVariable(defaultsVariable)}: ${problem}`));
  }
  const instances = declaration.variables
    .filter((variable) => variable.name.startsWith(INSTANCE_VARIABLE_PREFIX))
    .map((variable) => buildInstance(variable, defaults, runDir, declaration, context));
  const sharingProblems = new Set<string>();
  const conflicts = reportSharedFiles(instances, sharingProblems);
  return {
    conf: declaration.file,
    runDir,
    instances,
    problems,
    conflicts,
    sharingProblems,
    arrayVariables: declaration.variables.filter((v) => v.value.kind === 'array'),
  };
}
