import { posix as path } from 'node:path';
import type { Declaration, Variable } from '../declaration/declaration.js';
import { DeclarationError, type SourceLocation } from '../errors.js';
import { splitWords } from '../declaration/reader.js';
import { describeSlotSearch, listInstalledSlots, parseSlot, resolveSlot, splitPathVariable } from './slot.js';
import { formatStringForm } from '../declaration/string-form.js';
import { formatSuggestion, suggestName } from './suggest.js';

/** Instances are the variables named `FPM_slot_<name>`. */
export const INSTANCE_VARIABLE_PREFIX = 'FPM_slot_';
/** Settings that apply to every instance unless the instance sets them itself. */
export const DEFAULTS_VARIABLE = 'FPM_defaults';
/** Where records, the lock and default pidfiles live. */
export const RUN_DIR_VARIABLE = 'FPM_run_dir';
/** Read by the OpenRC runscript (sourced there), not by the controller: `yes` runs the supervisor. */
export const SUPERVISE_VARIABLE = 'FPM_supervise';
const KNOWN_PLAIN_VARIABLES = [DEFAULTS_VARIABLE, RUN_DIR_VARIABLE, SUPERVISE_VARIABLE];

export const DEFAULT_START_TIMEOUT_S = 30;
/** Long enough for requests under php.ini's default max_execution_time (30 s) to finish. */
export const DEFAULT_STOP_TIMEOUT_S = 35;
const MAX_TIMEOUT_S = 3600;
const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9_]+$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
  startTimeoutMs: number;
  stopTimeoutMs: number;
  enabled: boolean;
  /** Supervisor keys (src/supervisor/): undefined when not given, the supervisor applies its defaults. */
  restartLimit?: RestartLimit | undefined;
  /** `health_restart=N`: restart after N consecutive failed pings of a pool; undefined: off. */
  healthRestart?: number | undefined;
  healthIntervalMs?: number | undefined;
  /** Why this instance cannot be used as declared; empty when it can. */
  problems: string[];
}

/** `restart_limit=COUNT/SECONDS`: after COUNT failures within SECONDS the instance is `failed`. */
export interface RestartLimit {
  count: number;
  periodMs: number;
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

type KeyName =
  | 'slot' | 'config' | 'binary' | 'pidfile' | 'prefix' | 'php_ini' | 'ini_scan_dir' | 'env'
  | 'args' | 'nice' | 'oom_score_adj' | 'start_timeout' | 'stop_timeout' | 'enabled'
  | 'restart_limit' | 'health_restart' | 'health_interval';

interface Settings {
  /** Keys that appeared, valid or not: a bad value is reported once, not again as missing. */
  given: Set<string>;
  slot?: string;
  config?: string;
  binary?: string;
  pidfile?: string;
  prefix?: string;
  php_ini?: string;
  ini_scan_dir?: string;
  env: Map<string, string>;
  args?: string[];
  nice?: number;
  oom_score_adj?: number;
  start_timeout?: number;
  stop_timeout?: number;
  enabled?: boolean;
  restart_limit?: RestartLimit;
  health_restart?: number;
  health_interval?: number;
}

type Parsed<T> = { value: T } | { problem: string };

interface KeySpec {
  /** Whether FPM_defaults may set it: a config or pidfile shared by every instance makes no sense. */
  inDefaults: boolean;
  /** Stores the value, or returns why it cannot be used; `at` locates the variable for errors. */
  apply(settings: Settings, value: string, at: SourceLocation): string | undefined;
}

function parseAbsolutePath(value: string): Parsed<string> {
  if (!path.isAbsolute(value)) return { problem: 'must be an absolute path (starting with /)' };
  return { value: path.normalize(value) };
}

function parseInteger(value: string, min: number, max: number): Parsed<number> {
  if (!/^[+-]?\d+$/.test(value)) return { problem: `must be a whole number from ${min} to ${max}` };
  const number = Number(value);
  if (number < min || number > max) return { problem: `must be from ${min} to ${max}` };
  return { value: number };
}

function parseSeconds(value: string): Parsed<number> {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0 || Number(value) > MAX_TIMEOUT_S) {
    return { problem: `must be a number of seconds greater than 0 and at most ${MAX_TIMEOUT_S}` };
  }
  return { value: Number(value) };
}

/** `5/300`: at most 1000 failures, a period of up to a day. */
function parseRestartLimit(value: string): Parsed<RestartLimit> {
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const count = Number(match?.[1]);
  const seconds = Number(match?.[2]);
  if (match === null || count < 1 || count > 1000 || seconds < 1 || seconds > 86_400) {
    return { problem: 'must be COUNT/SECONDS, e.g. 5/300 (COUNT 1 to 1000, SECONDS 1 to 86400)' };
  }
  return { value: { count, periodMs: seconds * 1000 } };
}

function parseEnabled(value: string): Parsed<boolean> {
  if (value === 'yes') return { value: true };
  if (value === 'no') return { value: false };
  return { problem: 'must be "yes" or "no"' };
}

/** php-fpm flags the controller sets itself, with the key to use instead (null: not settable). */
const MANAGED_FLAGS: ReadonlyArray<[flag: string, key: KeyName | null]> = [
  ['-y', 'config'], ['--fpm-config', 'config'], ['-g', 'pidfile'], ['--pid', 'pidfile'],
  ['-p', 'prefix'], ['--prefix', 'prefix'], ['-c', 'php_ini'], ['--php-ini', 'php_ini'],
  ['-D', null], ['--daemonize', null], ['-F', null], ['--nodaemonize', null],
  ['-t', null], ['--test', null], ['-h', null], ['--help', null], ['-i', null], ['--info', null],
  ['-m', null], ['--modules', null], ['-v', null], ['--version', null],
];

/** Short flags that take their value attached as well as separate (`-y/etc/x.conf`). */
const SHORT_FLAGS_WITH_VALUE = new Set(['-y', '-g', '-p', '-c']);

function findManagedFlag(arg: string): [string, KeyName | null] | undefined {
  return MANAGED_FLAGS.find(([flag]) => {
    if (arg === flag) return true;
    if (flag.startsWith('--')) return arg.startsWith(`${flag}=`);
    if (SHORT_FLAGS_WITH_VALUE.has(flag)) return arg.startsWith(flag);
    return flag === '-t' && arg === '-tt';
  });
}

function setOnce<K extends Exclude<KeyName, 'env'>>(
  settings: Settings, key: K, parsed: Parsed<NonNullable<Settings[K]>>,
): string | undefined {
  if ('problem' in parsed) return parsed.problem;
  if (settings[key] !== undefined) return `is given twice; keep one`;
  settings[key] = parsed.value as Settings[K];
  return undefined;
}

function parseArgs(settings: Settings, value: string, at: SourceLocation): string | undefined {
  if (settings.args !== undefined) return 'is given twice; keep one';
  let words: string[];
  try {
    words = splitWords(value, at);
  } catch (error) {
    if (error instanceof DeclarationError) return `cannot be split into words: ${error.found}`;
    throw error;
  }
  for (const word of words) {
    const managed = findManagedFlag(word);
    if (managed) {
      const [flag, key] = managed;
      return key === null
        ? `must not contain ${flag}: the controller runs php-fpm in the background and tests its config itself`
        : `must not contain ${flag}: use the ${key}= key instead`;
    }
  }
  settings.args = words;
  return undefined;
}

const KEYS: Record<KeyName, KeySpec> = {
  slot: {
    inDefaults: true,
    apply: (s, v) => setOnce(s, 'slot', parseSlot(v) ? { value: v } : { problem: 'must name a PHP version like "php8.2" or "8.2"' }),
  },
  config: { inDefaults: false, apply: (s, v) => setOnce(s, 'config', parseAbsolutePath(v)) },
  binary: { inDefaults: true, apply: (s, v) => setOnce(s, 'binary', parseAbsolutePath(v)) },
  pidfile: { inDefaults: false, apply: (s, v) => setOnce(s, 'pidfile', parseAbsolutePath(v)) },
  prefix: { inDefaults: true, apply: (s, v) => setOnce(s, 'prefix', parseAbsolutePath(v)) },
  php_ini: { inDefaults: true, apply: (s, v) => setOnce(s, 'php_ini', parseAbsolutePath(v)) },
  ini_scan_dir: {
    inDefaults: true,
    apply: (s, v) => setOnce(s, 'ini_scan_dir', v === '' ? { problem: 'must not be empty' } : { value: v }),
  },
  env: {
    inDefaults: true,
    apply: (s, v) => {
      const equals = v.indexOf('=');
      const name = equals < 0 ? v : v.slice(0, equals);
      if (equals < 0 || !ENV_NAME_PATTERN.test(name)) return 'must be NAME=VALUE with a valid variable name';
      if (name === 'PHP_INI_SCAN_DIR') return 'cannot set PHP_INI_SCAN_DIR; use the ini_scan_dir key';
      if (s.env.has(name)) return `sets ${name} twice; keep one`;
      s.env.set(name, v.slice(equals + 1));
      return undefined;
    },
  },
  args: { inDefaults: true, apply: parseArgs },
  nice: { inDefaults: true, apply: (s, v) => setOnce(s, 'nice', parseInteger(v, -20, 19)) },
  oom_score_adj: { inDefaults: true, apply: (s, v) => setOnce(s, 'oom_score_adj', parseInteger(v, -1000, 1000)) },
  start_timeout: { inDefaults: true, apply: (s, v) => setOnce(s, 'start_timeout', parseSeconds(v)) },
  stop_timeout: { inDefaults: true, apply: (s, v) => setOnce(s, 'stop_timeout', parseSeconds(v)) },
  enabled: { inDefaults: true, apply: (s, v) => setOnce(s, 'enabled', parseEnabled(v)) },
  restart_limit: { inDefaults: true, apply: (s, v) => setOnce(s, 'restart_limit', parseRestartLimit(v)) },
  health_restart: { inDefaults: true, apply: (s, v) => setOnce(s, 'health_restart', parseInteger(v, 1, 1000)) },
  health_interval: { inDefaults: true, apply: (s, v) => setOnce(s, 'health_interval', parseSeconds(v)) },
};
export const KNOWN_KEYS = Object.keys(KEYS) as KeyName[];

/** Keys whose values commonly hold spaces: an unquoted space splits the value into more words. */
const SPACED_VALUE_KEYS = ['env', 'args'];

/** A word that reads as a setting of its own: a known key, or a likely typo of one. */
function looksLikeSetting(word: string): boolean {
  const equals = word.indexOf('=');
  if (equals <= 0) return false;
  const key = word.slice(0, equals);
  return Object.hasOwn(KEYS, key) || suggestName(key, KNOWN_KEYS) !== undefined;
}

/** A bash double-quoted word: only `"`, `\`, `$` and backquote need a backslash there. */
function doubleQuote(word: string): string {
  return `"${word.replace(/["\\$`]/g, (char) => `\\${char}`)}"`;
}

/** The variable written again with `words`, in the form it was written in. */
function formatVariable(variable: Variable, words: readonly string[]): string {
  return variable.value.kind === 'array'
    ? `${variable.name}=( ${words.map(doubleQuote).join(' ')} )`
    : formatStringForm(variable.name, words);
}

/**
 * `env=GREETING=hello world` without quotes is two words, `env=GREETING=hello` and `world`:
 * words after an env= or args= word that are no setting of their own are most likely the rest of
 * its value. Each such run becomes one problem showing the whole line with the value quoted (which
 * works as written), and its words are not reported again as "not key=value".
 */
function findSplitValues(words: readonly string[], variable: Variable, problems: string[]): Set<number> {
  const swallowed = new Set<number>();
  const fixed: string[] = [];
  const splits: { head: string; rest: string[] }[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const key = word.slice(0, Math.max(0, word.indexOf('=')));
    let end = i + 1;
    if (SPACED_VALUE_KEYS.includes(key)) {
      while (end < words.length && !looksLikeSetting(words[end]!)) end++;
    }
    if (end === i + 1) {
      fixed.push(word);
      continue;
    }
    const rest = words.slice(i + 1, end);
    for (let j = i + 1; j < end; j++) swallowed.add(j);
    splits.push({ head: word, rest });
    fixed.push([word, ...rest].join(' '));
    i = end - 1;
  }
  for (const { head, rest } of splits) {
    problems.push(
      `${rest.map((w) => `"${w}"`).join(' ')} ${rest.length === 1 ? 'is' : 'are'} not key=value: most likely the rest of "${head}", split off because the value is not quoted. Quote the whole word, as in: ${formatVariable(variable, fixed)}`,
    );
  }
  return swallowed;
}

/** Reads `key=value` words into settings; every unusable word becomes a problem naming it. */
function parseSettings(
  words: readonly string[], variable: Variable, file: string, problems: string[], isDefaults: boolean,
): Settings {
  const settings: Settings = { given: new Set(), env: new Map() };
  const swallowed = findSplitValues(words, variable, problems);
  for (const [index, word] of words.entries()) {
    if (swallowed.has(index)) continue;
    const equals = word.indexOf('=');
    if (equals <= 0) {
      problems.push(`"${word}" is not key=value; write e.g. "config=/etc/php/fpm/php-fpm.conf"`);
      continue;
    }
    const key = word.slice(0, equals);
    const value = word.slice(equals + 1);
    if (!Object.hasOwn(KEYS, key)) {
      problems.push(`unknown key "${key}"${formatSuggestion(key, KNOWN_KEYS)}; known keys: ${KNOWN_KEYS.join(', ')}`);
      continue;
    }
    const spec = KEYS[key as KeyName];
    settings.given.add(key);
    if (isDefaults && !spec.inDefaults) {
      problems.push(`"${key}" cannot be a default: every instance needs its own; set it in each FPM_slot_ variable`);
      continue;
    }
    const problem = spec.apply(settings, value, { file, line: variable.line, column: variable.column });
    if (problem !== undefined) problems.push(`${key}=${value}: ${problem}`);
  }
  return settings;
}

function readWords(variable: Variable, file: string): { words: string[] } | { problem: string } {
  if (variable.value.kind === 'array') return { words: variable.value.elements };
  try {
    return { words: splitWords(variable.value.value, { file, line: variable.line, column: variable.column }) };
  } catch (error) {
    if (error instanceof DeclarationError) return { problem: `its value cannot be split into words: ${error.message}` };
    throw error;
  }
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
  if (settings.config === undefined && 'words' in read && !settings.given.has('config')) {
    problems.push('config= is missing; add e.g. "config=/etc/php/8.2/fpm/php-fpm.conf"');
  } else if (settings.config !== undefined && !context.probe.isFile(settings.config)) {
    problems.push(`config=${settings.config}: no such file; create it or fix the path`);
  }
  const binary = 'words' in read ? resolveBinary(settings, context, problems) : null;
  const pidfile = settings.pidfile ?? (runDir === null ? null : path.join(runDir, `${name}.pid`));
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
    startTimeoutMs: (settings.start_timeout ?? DEFAULT_START_TIMEOUT_S) * 1000,
    stopTimeoutMs: (settings.stop_timeout ?? DEFAULT_STOP_TIMEOUT_S) * 1000,
    enabled: settings.enabled ?? true,
    restartLimit: settings.restart_limit,
    healthRestart: settings.health_restart,
    healthIntervalMs: settings.health_interval === undefined ? undefined : settings.health_interval * 1000,
    problems,
  };
}

/** How many names of a group sharing a file a message lists before "(N more)": output stays small. */
export const MAX_NAMES_LISTED = 3;

/** `A (line 1), B (line 2), C (line 3), … (997 more)`. */
function listSome(instances: readonly Instance[]): string {
  const shown = instances.slice(0, MAX_NAMES_LISTED).map((i) => `${i.variable} (line ${i.line})`);
  const more = instances.length - shown.length;
  return more > 0 ? `${shown.join(', ')}, … (${more} more)` : shown.join(', ');
}

/**
 * Two enabled instances must never share a config or a pidfile: they would fight over one master.
 * The first declared keeps the file (it may well be the one running: `stop` and `status` must still
 * reach it); every later one gets the problem, and the group is reported once in `conflicts`.
 * Linear in the number of instances, as is its output.
 */
function reportSharedFiles(instances: Instance[], sharingProblems: Set<string>): string[] {
  const conflicts: string[] = [];
  for (const field of ['config', 'pidfile'] as const) {
    const users = new Map<string, Instance[]>();
    for (const instance of instances) {
      const file = instance[field];
      if (!instance.enabled || file === null) continue;
      const sharing = users.get(file);
      if (sharing === undefined) users.set(file, [instance]);
      else sharing.push(instance);
    }
    for (const [file, sharing] of users) {
      if (sharing.length < 2) continue;
      const [first, ...later] = sharing as [Instance, ...Instance[]];
      conflicts.push(
        `${field} ${file} is used by ${first.variable} (line ${first.line}) and also by ${listSome(later)}: give ${later.length === 1 ? 'the later one' : 'each later one'} its own ${field} (or remove ${later.length === 1 ? 'it' : 'them'}, or set enabled=no)`,
      );
      // One string for the whole group: check prints the group once, not once per instance.
      const problem = `${field} ${file} is already used by ${first.variable} (line ${first.line}), declared first; give this instance its own ${field}`;
      sharingProblems.add(problem);
      for (const instance of later) instance.problems.push(problem);
    }
  }
  return conflicts;
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
