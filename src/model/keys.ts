// The keys of an instance's settings (`slot=`, `config=`, `env=`, …): what each accepts, how a
// value is parsed and checked, and how a variable's words become settings, with a problem naming
// every unusable word (also a value split by missing quotes). Pure.
import { posix as path } from 'node:path';
import type { Variable } from '../declaration/declaration.js';
import { splitWords } from '../declaration/words.js';
import { formatStringForm } from '../declaration/string-form.js';
import { DeclarationError, type SourceLocation } from '../errors.js';
import { parseSlot } from './slot.js';
import { formatSuggestion, suggestName } from './suggest.js';
import type { RestartLimit } from './instance.js';
import { parseSocketDirMode, parseSocketDirOwner, type SocketDirOwner } from './socket-dir.js';

const MAX_TIMEOUT_S = 3600;
/**
 * Words one instance (or FPM_defaults) may have: a real one has a dozen. Beyond it nothing of
 * the variable is read as settings, and one problem names the count: a 1 MiB file of 500,000
 * words must not become 500,000 problems (and hundreds of MiB of output).
 */
export const MAX_INSTANCE_WORDS = 4096;
/** Words that are not key=value reported one by one per variable; the rest are counted in one line. */
export const NOT_KEY_VALUE_SHOWN = 5;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type KeyName =
  | 'slot' | 'config' | 'binary' | 'pidfile' | 'prefix' | 'php_ini' | 'ini_scan_dir' | 'env'
  | 'args' | 'nice' | 'oom_score_adj' | 'start_timeout' | 'stop_timeout' | 'enabled'
  | 'restart_limit' | 'health_restart' | 'health_interval' | 'socket_dir_owner' | 'socket_dir_mode'
  | 'user' | 'group';

export interface Settings {
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
  socket_dir_owner?: SocketDirOwner;
  socket_dir_mode?: number;
  user?: string;
  group?: string;
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

/**
 * A user or group name as useradd/groupadd accept it (and systemd's User=): the name is looked
 * up by getent when the instance starts. A number is refused: php-fpm-multi names the account
 * in its messages and records, and a uid without an account has no primary group.
 */
const ACCOUNT_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,30}\$?$/;

function parseAccountName(value: string): Parsed<string> {
  if (ACCOUNT_NAME_PATTERN.test(value)) return { value };
  return { problem: 'must be a user or group name (letters, digits, _, . or -, not starting with a digit or -, at most 32 characters), e.g. "www-data"' };
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
  socket_dir_owner: { inDefaults: true, apply: (s, v) => setOnce(s, 'socket_dir_owner', parseSocketDirOwner(v)) },
  socket_dir_mode: { inDefaults: true, apply: (s, v) => setOnce(s, 'socket_dir_mode', parseSocketDirMode(v)) },
  user: { inDefaults: true, apply: (s, v) => setOnce(s, 'user', parseAccountName(v)) },
  group: { inDefaults: true, apply: (s, v) => setOnce(s, 'group', parseAccountName(v)) },
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
export function parseSettings(
  words: readonly string[], variable: Variable, file: string, problems: string[], isDefaults: boolean,
): Settings {
  const settings: Settings = { given: new Set(), env: new Map() };
  if (words.length > MAX_INSTANCE_WORDS) {
    problems.push(describeTooManyWords(words.length));
    return settings;
  }
  const swallowed = findSplitValues(words, variable, problems);
  let notKeyValue = 0;
  for (const [index, word] of words.entries()) {
    if (swallowed.has(index)) continue;
    const equals = word.indexOf('=');
    if (equals <= 0) {
      if (++notKeyValue <= NOT_KEY_VALUE_SHOWN) problems.push(`"${word}" is not key=value; write e.g. "config=/etc/php/fpm/php-fpm.conf"`);
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
  if (notKeyValue > NOT_KEY_VALUE_SHOWN) {
    const more = notKeyValue - NOT_KEY_VALUE_SHOWN;
    problems.push(`… and ${more} more ${more === 1 ? 'word that is' : 'words that are'} not key=value`);
  }
  return settings;
}

/** One problem for a variable with more words than any instance needs (see MAX_INSTANCE_WORDS). */
export function describeTooManyWords(count: number): string {
  return `has ${count} words, more than the ${MAX_INSTANCE_WORDS} one variable may have (an instance needs a dozen), so none of them was read; remove the extra words`;
}

export function readWords(variable: Variable, file: string): { words: string[] } | { problem: string } {
  if (variable.value.kind === 'array') return { words: variable.value.elements };
  try {
    return { words: splitWords(variable.value.value, { file, line: variable.line, column: variable.column }) };
  } catch (error) {
    if (error instanceof DeclarationError) return { problem: `its value cannot be split into words: ${error.message}` };
    throw error;
  }
}
