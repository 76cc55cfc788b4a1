// Reads what the controller needs from a php-fpm configuration, following the rules php-fpm 8.2
// itself applies (sapi/fpm/fpm/fpm_conf.c, fpm_sockets.c and Zend's INI scanner), checked against
// `php-fpm8.2 -tt` on Debian 12. The parser is pure: files come through an injected reader, so
// tests and callers decide where they come from. `loadFpmConfig` is the real-filesystem edge.
//
// php-fpm rules this module reproduces (each one seen with `php-fpm8.2 -tt`):
// - Every physical line is parsed on its own by the INI scanner, so nothing spans two lines
//   (an unterminated `[` or `"` is a syntax error). `;` starts a comment; `#` does NOT.
// - Sections are pools, except `[global]` (any case). Reopening a pool name (any case) reopens
//   that pool; the later value of a key replaces the earlier one. The section stays current
//   across `include`, so keys after an include land in the last pool of the included files.
// - `include` (lower case only) is a glob(3) pattern; a relative one is taken from the prefix
//   (`-p`, else /usr), not from the including file. Matches are read in byte order, directories
//   are skipped, a pattern matching nothing is only a warning, a pattern whose fixed directory
//   cannot be read is refused, and at most 5 files may be nested.
// - Values: `${VAR}` reads the environment, `"..."` allows `\"` `\\` `\$` and `${VAR}`, `'...'`
//   is raw, yes/on/true become "1" and no/off/false/none/null become "", `| & ^ ~ ! ( )` are
//   integer operators and a bare constant name (E_ALL) is replaced by its value.
// - `$pool` in a pool's string value becomes the pool name; in [global] it is refused.
// - Relative paths: pid and error_log from the prefix, else /var; listen (unix) from the pool
//   `prefix`, else the prefix, else /usr. `error_log = syslog` (any case) is not a path.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { FpmMultiError } from '../errors.js';
import { EXIT_FAILURE } from '../exit-codes.js';
import { FPM_CONFIG_MAX_BYTES, readRegularFile, UnsafeFileError } from '../process/system.js';

// ---------------------------------------------------------------------------------------------
// Compiled-in defaults of Debian's php8.2-fpm (`php-fpm8.2 -h` and `-tt` show them).

/** PHP_PREFIX: where relative `include` and unix `listen` paths start without `-p`. */
export const DEFAULT_PHP_PREFIX = '/usr';
/** PHP_LOCALSTATEDIR: where relative `pid` and `error_log` paths start without `-p`. */
export const DEFAULT_LOCAL_STATE_DIR = '/var';
/** error_log when the configuration sets none, relative like a configured one. */
export const DEFAULT_ERROR_LOG = 'log/php-fpm.log';
export const DEFAULT_PING_RESPONSE = 'pong';
export const DEFAULT_SYSLOG_IDENT = 'php-fpm';
/** pm.status_path php-fpm uses when only pm.status_listen is set. */
export const DEFAULT_SHARED_STATUS_PATH = '/';
/**
 * Everything one configuration reads, the main file and all its includes (each file is also
 * limited to FPM_CONFIG_MAX_BYTES when it is read): a glob can match any number of files.
 */
export const FPM_CONFIG_TOTAL_MAX_BYTES = 16 * 1024 * 1024;
/** php-fpm refuses a 6th nested file: "failed to include more than 5 files recursively". */
export const MAX_NESTED_FILES = 5;
export const MIN_TCP_PORT = 1;
export const MAX_TCP_PORT = 65_535;
/** Suffix php-fpm appends to a pool name for the extra listener that pm.status_listen opens. */
export const STATUS_LISTENER_SUFFIX = '_status';

/**
 * PHP constants a value may name. Only the error-level ones are built in: they are what fpm
 * configurations use (`php_admin_value[error_reporting] = E_ALL & ~E_NOTICE`); PHP 8.2 values.
 */
export const PHP_ERROR_CONSTANTS: Readonly<Record<string, string>> = {
  E_ERROR: '1',
  E_WARNING: '2',
  E_PARSE: '4',
  E_NOTICE: '8',
  E_CORE_ERROR: '16',
  E_CORE_WARNING: '32',
  E_COMPILE_ERROR: '64',
  E_COMPILE_WARNING: '128',
  E_USER_ERROR: '256',
  E_USER_WARNING: '512',
  E_USER_NOTICE: '1024',
  E_STRICT: '2048',
  E_RECOVERABLE_ERROR: '4096',
  E_DEPRECATED: '8192',
  E_USER_DEPRECATED: '16384',
  E_ALL: '32767',
};

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
// php-fpm 8.2's boolean reading of an already INI-processed string (case-sensitive).
const TRUE_STRINGS = new Set(['1', 'yes', 'on', 'true']);
const FALSE_STRINGS = new Set(['', '0', 'no', 'off', 'false', 'none']);
const PROCESS_MANAGERS = ['static', 'dynamic', 'ondemand'] as const;
const POOL_NAME_TOKEN = '$pool';
/** ping.path and pm.status_path need '/' and one more character. */
const MIN_REQUEST_PATH_LENGTH = 2;
const REQUEST_PATH_CHARS = /^[A-Za-z0-9/_.~-]+$/;

// ---------------------------------------------------------------------------------------------
// Public types

export interface SourceRef {
  file: string;
  /** 1-based; 0 when the whole file is meant. */
  line: number;
}

/** Where the parser gets files from. */
export interface FpmConfigReader {
  /** The file's text; throws when it cannot be read. */
  readFile(path: string): string;
  /**
   * glob(3) as php-fpm calls it (GLOB_ERR | GLOB_MARK): matches in byte order, directories
   * with a trailing '/', [] when nothing matches; throws when a directory the pattern has to
   * list cannot be read (php-fpm refuses the configuration then).
   */
  glob(pattern: string): string[];
}

export interface FpmConfigOptions {
  reader: FpmConfigReader;
  /** Environment php-fpm will see, for `${VAR}`. Default: empty. */
  env?: Readonly<Record<string, string | undefined>>;
  /** php-fpm's `-p`/`--prefix`. */
  prefix?: string;
  /** php-fpm's `-g`/`--pid`: used when the configuration sets no pid. */
  pidFile?: string;
  /** php-fpm's `-D` (true) or `-F` (false): overrides `daemonize`. */
  forceDaemonize?: boolean;
  /** Compiled-in PHP_PREFIX. Default DEFAULT_PHP_PREFIX. */
  phpPrefix?: string;
  /** Compiled-in PHP_LOCALSTATEDIR. Default DEFAULT_LOCAL_STATE_DIR. */
  localStateDir?: string;
  /** Constants a bare value may name. Default PHP_ERROR_CONSTANTS. */
  constants?: Readonly<Record<string, string>>;
}

export type FpmErrorLog = { kind: 'file'; path: string } | { kind: 'syslog'; ident: string };

export interface FpmInclude extends SourceRef {
  /** The pattern as php-fpm globs it (made absolute from the prefix). */
  pattern: string;
  /** Files it matched, in the order they were read. */
  files: string[];
}

export interface FpmGlobalConfig {
  /** Absolute (or as relative as the prefix is); null when php-fpm writes no pid file. */
  pid: string | null;
  /** Where the configuration itself sets `pid` (which php-fpm prefers over --pid); null when it does not. */
  pidAt: SourceRef | null;
  /**
   * process_control_timeout in seconds: how long the master lets workers finish their requests on
   * a graceful stop (SIGQUIT) or reload (SIGUSR2). php-fpm's default 0 cuts them at once. null
   * when the value is not one php-fpm reads (its config test names it).
   */
  processControlTimeoutS: number | null;
  errorLog: FpmErrorLog;
  daemonize: boolean;
  includes: FpmInclude[];
}

export type FpmProcessManager = (typeof PROCESS_MANAGERS)[number];

export interface FpmPool extends SourceRef {
  /** As first spelled; `file`/`line` are where the section was first opened. */
  name: string;
  /** Unix socket path (made absolute like php-fpm does) or TCP address as written; null if unset. */
  listen: string | null;
  listenAt: SourceRef | null;
  /** pm.status_listen: a second listener php-fpm opens as pool `<name>_status`. */
  statusListen: string | null;
  statusListenAt: SourceRef | null;
  pingPath: string | null;
  /** 'pong' when ping.path is set and ping.response is not; null without ping.path. */
  pingResponse: string | null;
  statusPath: string | null;
  pm: FpmProcessManager | null;
  user: string | null;
  group: string | null;
  /** The pool's `prefix`, made absolute. */
  prefix: string | null;
  /**
   * listen.allowed_clients split at commas (php-fpm accepts connections only from these
   * addresses); null or absent when unset (any client).
   */
  allowedClients?: string[] | null;
}

export interface FpmConfigWarning extends SourceRef {
  message: string;
  /** True when php-fpm refuses to start with this configuration; false when it only warns. */
  refusedByPhpFpm: boolean;
}

export interface FpmConfig {
  file: string;
  global: FpmGlobalConfig;
  pools: FpmPool[];
  /** Every file read, in reading order, the main file first. */
  files: string[];
  warnings: FpmConfigWarning[];
}

/** The configuration cannot be read the way php-fpm reads it; names file:line, what and the fix. */
export class FpmConfigError extends FpmMultiError {
  readonly file: string;
  readonly line: number;
  readonly found: string;
  readonly fix: string;

  constructor(at: SourceRef, found: string, fix: string) {
    const where = at.line > 0 ? `${at.file}:${at.line}` : at.file;
    super(`${where}: ${found}. ${fix}`, EXIT_FAILURE);
    this.file = at.file;
    this.line = at.line;
    this.found = found;
    this.fix = fix;
  }
}

// ---------------------------------------------------------------------------------------------
// Line scanner: one physical line at a time, like fpm_conf_load_ini_file feeds the INI parser.

type Statement =
  | { kind: 'section'; name: string }
  | { kind: 'entry'; key: string; value: string | null }
  | { kind: 'array'; key: string; offset: string; value: string };

interface ScanContext {
  at: SourceRef;
  env: Readonly<Record<string, string | undefined>>;
  constants: Readonly<Record<string, string>>;
  warn(message: string, refusedByPhpFpm: boolean): void;
}

type ValueToken =
  | { kind: 'text'; text: string }
  | { kind: 'bool'; text: '1' | '' }
  | { kind: 'op'; op: string };

interface Rule<K extends string> {
  kind: K;
  pattern: RegExp;
}

// Order matters only for equally long matches, as in the re2c scanner (earlier rule wins).
const VALUE_RULES: Rule<string>[] = [
  { kind: 'true', pattern: /(?:true|yes|on)[ \t]*/iy },
  { kind: 'false', pattern: /(?:false|none|off|no|null)[ \t]*/iy },
  { kind: 'end', pattern: /[ \t]*(?:;[^\r]*)?(?:\r|$)/y },
  { kind: 'quote', pattern: /[ \t]*"/y },
  { kind: 'raw', pattern: /'[^'\r]+'/y },
  { kind: 'variable', pattern: /\$\{/y },
  { kind: 'op', pattern: /[|&^~!()][ \t]*/y },
  { kind: 'equals', pattern: /=/y },
  { kind: 'space', pattern: /[ \t]+/y },
  // A `$` not opening `${` is literal and swallows the next character, as php's LITERAL_DOLLAR.
  { kind: 'text', pattern: /(?:[^$= \t\r;&|^~()!"']|\$(?!\{)(?:\\[^]|[^\r])?)+/y },
];

// Section names and array offsets: spaces belong to the name, operators are plain characters.
const SECTION_RULES: Rule<string>[] = [
  { kind: 'end', pattern: /[ \t]*\][ \t]*\r?/y },
  { kind: 'quote', pattern: /[ \t]*"/y },
  { kind: 'raw', pattern: /'[^'\r]+'/y },
  { kind: 'variable', pattern: /\$\{/y },
  { kind: 'text', pattern: /(?:[^$\r;"'\]\\]|\\[^]|\$(?!\{)(?:\\[^]|[^\r])?)+/y },
];

const LABEL_PATTERN = /[^=[\];\r\t&|^$~(){}!"]+/y;
const SPACES_PATTERN = /[ \t]*/y;
const VARIABLE_NAME_PATTERN = /([^}\r]*)\}/y;
const CONSTANT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function matchLongest<K extends string>(rules: Rule<K>[], line: string, pos: number): { kind: K; text: string } | null {
  let best: { kind: K; text: string } | null = null;
  for (const rule of rules) {
    rule.pattern.lastIndex = pos;
    const match = rule.pattern.exec(line);
    if (match && (best === null || match[0].length > best.text.length)) {
      best = { kind: rule.kind, text: match[0] };
    }
  }
  return best;
}

function syntaxError(ctx: ScanContext, found: string, fix: string): FpmConfigError {
  return new FpmConfigError(ctx.at, `php's INI parser refuses this line: ${found}`, fix);
}

function describeChar(ch: string | undefined): string {
  return ch === undefined || ch === '\r' ? 'end of line' : `'${ch}'`;
}

/** Reads `${NAME}` starting at `pos` (on the `$`); returns the variable's value and the end. */
function readVariable(line: string, pos: number, ctx: ScanContext): { text: string; end: number } {
  VARIABLE_NAME_PATTERN.lastIndex = pos + 2;
  const match = VARIABLE_NAME_PATTERN.exec(line);
  const name = match?.[1];
  if (!match || name === undefined || name === '') {
    throw syntaxError(ctx, `'${line.slice(pos)}' is not a complete \${NAME} reference`, 'Write ${NAME} with a variable name and a closing }, or quote a literal $ as "\\$".');
  }
  // php looks in php.ini directives first, then the environment; only the latter is known here.
  return { text: ctx.env[name] ?? '', end: VARIABLE_NAME_PATTERN.lastIndex };
}

/** Reads a double-quoted string whose opening quote ends at `pos`; returns text and end. */
function readDoubleQuoted(line: string, pos: number, ctx: ScanContext): { text: string; end: number } {
  let text = '';
  let i = pos;
  for (;;) {
    const ch = line[i];
    if (ch === undefined) {
      throw syntaxError(ctx, `the double-quoted string '${line.slice(pos - 1)}' is not closed on this line`, 'Close the string with " on the same line: php-fpm reads every line on its own.');
    }
    if (ch === '"') {
      SPACES_PATTERN.lastIndex = i + 1;
      SPACES_PATTERN.exec(line);
      return { text, end: SPACES_PATTERN.lastIndex };
    }
    if (ch === '$' && line[i + 1] === '{') {
      const variable = readVariable(line, i, ctx);
      text += variable.text;
      i = variable.end;
      continue;
    }
    if (ch === '\\') {
      const next = line[i + 1];
      const afterNext = line[i + 2];
      // php keeps a backslash before a closing quote at the end of the line ("C:\dir\").
      const windowsPathEnd = next === '"' && (afterNext === undefined || afterNext === '\r');
      if (next === undefined || windowsPathEnd) {
        text += '\\';
        i += 1;
      } else if (next === '"' || next === '\\' || next === '$') {
        text += next;
        i += 2;
      } else {
        text += `\\${next}`;
        i += 2;
      }
      continue;
    }
    text += ch;
    i += 1;
  }
}

/** Reads a section name or array offset after its '['; returns the text and the end after ']'. */
function readBracketed(line: string, pos: number, ctx: ScanContext, what: string): { text: string; end: number } {
  let text = '';
  let i = pos;
  for (;;) {
    const token = matchLongest(SECTION_RULES, line, i);
    if (token === null) {
      throw syntaxError(ctx, `the ${what} '${line.slice(pos - 1)}' has no closing ']' (found ${describeChar(line[i])})`, `Close the ${what} with ']' on the same line; ';' starts a comment even inside brackets.`);
    }
    switch (token.kind) {
      case 'end':
        return { text, end: i + token.text.length };
      case 'quote': {
        const quoted = readDoubleQuoted(line, i + token.text.length, ctx);
        text += quoted.text;
        i = quoted.end;
        continue;
      }
      case 'raw':
        text += token.text.slice(1, -1);
        break;
      case 'variable': {
        const variable = readVariable(line, i, ctx);
        text += variable.text;
        i = variable.end;
        continue;
      }
      default:
        text += token.text;
    }
    i += token.text.length;
  }
}

/** Splits a value into tokens, up to the end of the line or a comment. */
function scanValue(line: string, pos: number, ctx: ScanContext): { tokens: ValueToken[]; end: number } {
  const tokens: ValueToken[] = [];
  let i = pos;
  for (;;) {
    const token = matchLongest(VALUE_RULES, line, i);
    if (token === null) {
      // Only a single quote that opens no raw string gets here. An empty '' leaves php-fpm with
      // a key without value; an unclosed ' ends the value silently, or is a syntax error when
      // nothing came before it.
      if (line[i + 1] === "'") {
        throw syntaxError(ctx, `the empty '' in '${line.slice(pos)}' leaves the key without a value`, "Remove the empty '' or write \"\" for an empty string.");
      }
      if (tokens.length === 0) {
        throw syntaxError(ctx, `the single-quoted string '${line.slice(i)}' is not closed`, "Close the string with ' on the same line, or use double quotes.");
      }
      ctx.warn(`php-fpm ignores everything from the unmatched ' in '${line.slice(i)}'`, false);
      return { tokens, end: line.length };
    }
    switch (token.kind) {
      case 'end':
        return { tokens, end: i + token.text.length };
      case 'equals':
        throw syntaxError(ctx, `'=' inside the value '${line.slice(pos)}'`, 'Quote a value that contains "=": key = "a=b".');
      case 'true':
      case 'false':
        tokens.push({ kind: 'bool', text: token.kind === 'true' ? '1' : '' });
        break;
      case 'quote': {
        const quoted = readDoubleQuoted(line, i + token.text.length, ctx);
        tokens.push({ kind: 'text', text: quoted.text });
        i = quoted.end;
        continue;
      }
      case 'raw':
        tokens.push({ kind: 'text', text: token.text.slice(1, -1) });
        break;
      case 'variable': {
        const variable = readVariable(line, i, ctx);
        tokens.push({ kind: 'text', text: variable.text });
        i = variable.end;
        continue;
      }
      case 'op':
        tokens.push({ kind: 'op', op: token.text.charAt(0) });
        break;
      case 'text':
        tokens.push({ kind: 'text', text: substituteConstant(token.text, ctx) });
        break;
      default:
        tokens.push({ kind: 'text', text: token.text });
    }
    i += token.text.length;
  }
}

function substituteConstant(text: string, ctx: ScanContext): string {
  if (!CONSTANT_NAME.test(text)) return text;
  return Object.hasOwn(ctx.constants, text) ? (ctx.constants[text] ?? text) : text;
}

/** C atoi(): leading blanks, optional sign, digits; anything else reads as 0. */
function atoi(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]) | 0;
}

/** Evaluates the INI expression grammar: strings concatenate, operators work on C ints. */
function evaluateValue(tokens: ValueToken[], ctx: ScanContext, source: string): string {
  if (tokens.length === 0) return '';
  const bool = tokens.find((token) => token.kind === 'bool');
  if (bool !== undefined) {
    if (tokens.length === 1) return bool.text;
    throw syntaxError(ctx, `a yes/no/on/off/true/false/none/null word is mixed with other text in '${source}'`, 'Quote the whole value ("yes please") or use the word alone.');
  }
  let index = 0;
  const unexpected = (): FpmConfigError => {
    const token = tokens[index];
    const what = token === undefined ? 'the end of the value' : token.kind === 'op' ? `'${token.op}'` : `'${token.text}'`;
    return syntaxError(ctx, `unexpected ${what} in the value '${source}'`, 'Quote the value if "|&^~!()" are meant literally, and balance the parentheses.');
  };
  const readUnary = (): string => {
    const token = tokens[index];
    if (token === undefined) throw unexpected();
    if (token.kind === 'op') {
      if (!'~!('.includes(token.op)) throw unexpected();
      index += 1;
      if (token.op === '~') return String(~atoi(readUnary()));
      if (token.op === '!') return String(atoi(readUnary()) === 0 ? 1 : 0);
      const inner = readExpression();
      const close = tokens[index];
      if (close?.kind !== 'op' || close.op !== ')') throw unexpected();
      index += 1;
      return inner;
    }
    let text = '';
    for (let piece = tokens[index]; piece?.kind === 'text'; piece = tokens[index]) {
      text += piece.text;
      index += 1;
    }
    return text;
  };
  const readExpression = (): string => {
    let left = readUnary();
    for (;;) {
      const token = tokens[index];
      if (token?.kind !== 'op' || !'|&^'.includes(token.op)) return left;
      index += 1;
      const right = atoi(readUnary());
      const a = atoi(left);
      left = String(token.op === '|' ? a | right : token.op === '&' ? a & right : a ^ right);
    }
  };
  const value = readExpression();
  if (index !== tokens.length) throw unexpected();
  return value;
}

function readValue(line: string, pos: number, ctx: ScanContext): { value: string; end: number } {
  SPACES_PATTERN.lastIndex = pos;
  SPACES_PATTERN.exec(line);
  const start = SPACES_PATTERN.lastIndex;
  const { tokens, end } = scanValue(line, start, ctx);
  return { value: evaluateValue(tokens, ctx, line.slice(start, end).replace(/\r$/, '')), end };
}

/** All statements of one physical line (a bare CR also ends a statement, as in php's scanner). */
function scanLine(line: string, ctx: ScanContext): Statement[] {
  const statements: Statement[] = [];
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      i += 1;
      continue;
    }
    if (ch === ';') {
      const cr = line.indexOf('\r', i);
      i = cr === -1 ? line.length : cr + 1;
      continue;
    }
    if (ch === '[') {
      const section = readBracketed(line, i + 1, ctx, 'section name');
      statements.push({ kind: 'section', name: section.text });
      i = section.end;
      continue;
    }
    LABEL_PATTERN.lastIndex = i;
    const label = LABEL_PATTERN.exec(line);
    if (label === null) {
      throw syntaxError(ctx, `unexpected ${describeChar(ch)} where a key was expected`, 'Start the line with a key (key = value), a [section] or a ; comment.');
    }
    const key = label[0].replace(/ +$/, '');
    SPACES_PATTERN.lastIndex = i + label[0].length;
    SPACES_PATTERN.exec(line);
    i = SPACES_PATTERN.lastIndex;
    const next = line[i];
    if (next === '=') {
      const { value, end } = readValue(line, i + 1, ctx);
      statements.push({ kind: 'entry', key, value });
      i = end;
    } else if (next === '[') {
      const offset = readBracketed(line, i + 1, ctx, `offset of '${key}[...]'`);
      SPACES_PATTERN.lastIndex = offset.end;
      SPACES_PATTERN.exec(line);
      i = SPACES_PATTERN.lastIndex;
      if (line[i] !== '=') {
        throw syntaxError(ctx, `'${key}[${offset.text}]' is not followed by '='`, `Write ${key}[${offset.text}] = value.`);
      }
      const { value, end } = readValue(line, i + 1, ctx);
      statements.push({ kind: 'array', key, offset: offset.text, value });
      i = end;
    } else if (next === undefined || next === '\r' || next === ';') {
      statements.push({ kind: 'entry', key, value: null });
    } else {
      throw syntaxError(ctx, `unexpected ${describeChar(next)} after the key '${key}'`, "Write key = value; quote values that contain special characters.");
    }
  }
  return statements;
}

// ---------------------------------------------------------------------------------------------
// php-fpm's reading of the statements (fpm_conf_ini_parser_*), across files.

interface StringSetting {
  value: string;
  at: SourceRef;
}

interface PoolDraft {
  name: string;
  at: SourceRef;
  strings: Map<string, StringSetting>;
}

interface ParseState {
  options: FpmConfigOptions;
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

function includePrefix(options: FpmConfigOptions): string {
  return options.prefix ?? options.phpPrefix ?? DEFAULT_PHP_PREFIX;
}

function stateDirPrefix(options: FpmConfigOptions): string {
  return options.prefix ?? options.localStateDir ?? DEFAULT_LOCAL_STATE_DIR;
}

/** fpm_evaluate_full_path without `$prefix`: php joins with '/' and normalises nothing. */
function resolveFromPrefix(path: string, prefix: string): string {
  return path.startsWith('/') ? path : `${prefix}/${path}`;
}

function parseBoolean(value: string, key: string, at: SourceRef): boolean {
  if (TRUE_STRINGS.has(value)) return true;
  if (FALSE_STRINGS.has(value)) return false;
  throw new FpmConfigError(at, `'${key} = ${value}' is not a boolean php-fpm accepts`, `Write ${key} = yes or ${key} = no.`);
}

function expandPoolName(value: string, key: string, state: ParseState, at: SourceRef): string {
  if (!value.includes(POOL_NAME_TOKEN)) return value;
  if (state.current === null) {
    throw new FpmConfigError(at, `'${key} = ${value}' uses $pool in the [global] section`, 'Use $pool only inside a pool section; php-fpm refuses it in [global].');
  }
  return value.split(POOL_NAME_TOKEN).join(state.current.name);
}

function openSection(name: string, state: ParseState, at: SourceRef): void {
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

function applyEntry(key: string, value: string, state: ParseState, at: SourceRef): void {
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
    } else if (name === 'pid' || name === 'error_log' || name === 'syslog.ident' || name === 'events.mechanism' || name === 'process_control_timeout') {
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

function applyArray(key: string, offset: string, state: ParseState, at: SourceRef): void {
  if (state.current === null) {
    state.warnings.push({ ...at, message: `php-fpm refuses the array '${key}[${offset}]' in [global]`, refusedByPhpFpm: true });
  } else if (!POOL_ARRAYS.has(key)) {
    state.warnings.push({ ...at, message: `php-fpm refuses the unknown directive '${key}[${offset}]'`, refusedByPhpFpm: true });
  }
}

function describeCause(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function includeFiles(pattern: string, state: ParseState, at: SourceRef, depth: number): void {
  const resolved = resolveFromPrefix(pattern, includePrefix(state.options));
  let matches: string[];
  try {
    matches = state.options.reader.glob(resolved);
  } catch (error) {
    throw new FpmConfigError(at, `php-fpm cannot expand 'include = ${pattern}' (${describeCause(error)})`, 'Create the directory the pattern names or fix the include line; php-fpm refuses a pattern whose directory cannot be read.');
  }
  const include: FpmInclude = { ...at, pattern: resolved, files: [] };
  state.includes.push(include);
  if (matches.length === 0) {
    state.warnings.push({ ...at, message: `nothing matches the include pattern '${resolved}'`, refusedByPhpFpm: false });
  }
  // Directories (marked with '/') match silently and are skipped, as php-fpm does.
  for (const file of matches.filter((match) => !match.endsWith('/'))) {
    include.files.push(file);
    readConfigFile(file, state, at, depth + 1);
  }
}

function readConfigFile(file: string, state: ParseState, includedFrom: SourceRef | null, depth: number): void {
  if (depth > MAX_NESTED_FILES) {
    throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `including '${file}' nests more than ${MAX_NESTED_FILES} files`, `Flatten the includes: php-fpm refuses more than ${MAX_NESTED_FILES} nested files (a file including itself also ends here).`);
  }
  let text: string;
  try {
    text = state.options.reader.readFile(file);
  } catch (error) {
    if (error instanceof UnsafeFileError) {
      // A FIFO, a device or a huge file: refused before it is read, so nothing hangs or fills memory.
      const fix = error.reason === 'not-regular'
        ? `php-fpm-multi reads only regular files (a symlink to one is fine): ${includedFrom === null ? 'point config= at the php-fpm configuration file' : 'remove it from the include pattern or replace it with a regular file'}`
        : `Each php-fpm configuration file is limited to ${FPM_CONFIG_MAX_BYTES / 1024 / 1024} MiB: ${includedFrom === null ? 'check that config= names the php-fpm configuration' : 'check what the include pattern matches'}`;
      throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `cannot read '${file}': ${error.problem}`, `${fix}.`);
    }
    throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `cannot read '${file}' (${describeCause(error)})`, includedFrom === null ? 'Check the path given to php-fpm -y and its permissions.' : 'Fix the permissions of the included file or remove it from the include pattern.');
  }
  state.bytesRead += Buffer.byteLength(text);
  if (state.bytesRead > FPM_CONFIG_TOTAL_MAX_BYTES) {
    throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `reading '${file}' makes the configuration and its includes larger than the limit of ${FPM_CONFIG_TOTAL_MAX_BYTES / 1024 / 1024} MiB in all`, 'Check what the include patterns match: a php-fpm configuration is a few KiB per pool.');
  }
  state.files.push(file);
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((line, index) => {
    if (line === '') return;
    const at: SourceRef = { file, line: index + 1 };
    const ctx: ScanContext = {
      at,
      env: state.env,
      constants: state.constants,
      warn: (message, refusedByPhpFpm) => state.warnings.push({ ...at, message, refusedByPhpFpm }),
    };
    let pendingInclude: string | null = null;
    for (const statement of scanLine(line, ctx)) {
      if (statement.kind === 'section') {
        openSection(statement.name, state, at);
      } else if (statement.kind === 'array') {
        applyArray(statement.key, statement.offset, state, at);
      } else if (statement.value === null) {
        throw new FpmConfigError(at, `the key '${statement.key}' has no '=' and no value`, `Write ${statement.key} = value, or comment the line out with ';' ('#' is not a comment for php-fpm).`);
      } else if (statement.key === 'include') {
        if (pendingInclude !== null) {
          throw new FpmConfigError(at, 'two includes on one line', 'Put each include on its own line.');
        }
        pendingInclude = statement.value;
      } else {
        applyEntry(statement.key, statement.value, state, at);
      }
    }
    // php-fpm reads the included files once the whole line is parsed.
    if (pendingInclude !== null) includeFiles(pendingInclude, state, at, depth);
  });
}

/** php-fpm's fpm_conf_set_time: a number of seconds, or of minutes, hours, days with m, h, d. */
const TIME_UNITS_S: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

function parseTimeS(value: string): number | null {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (match === null) return null;
  return Number(match[1]) * TIME_UNITS_S[match[2]!]!;
}

function finishGlobal(state: ParseState): FpmGlobalConfig {
  const { options } = state;
  const pidSetting = state.global.get('pid');
  const configuredPid = pidSetting?.value ?? options.pidFile ?? null;
  const errorLog = state.global.get('error_log')?.value ?? DEFAULT_ERROR_LOG;
  const processControlTimeout = state.global.get('process_control_timeout');
  return {
    pid: configuredPid === null ? null : resolveFromPrefix(configuredPid, stateDirPrefix(options)),
    pidAt: pidSetting?.at ?? null,
    processControlTimeoutS: processControlTimeout === undefined ? 0 : parseTimeS(processControlTimeout.value),
    errorLog: errorLog.toLowerCase() === 'syslog'
      ? { kind: 'syslog', ident: state.global.get('syslog.ident')?.value ?? DEFAULT_SYSLOG_IDENT }
      : { kind: 'file', path: resolveFromPrefix(errorLog, stateDirPrefix(options)) },
    daemonize: options.forceDaemonize ?? state.daemonize,
    includes: state.includes,
  };
}

/** ping.path and pm.status_path: php-fpm's checks, or null when it accepts the path (or none). */
function describeRequestPathProblem(path: string | null, minLength: number): string | null {
  if (path === null || path === '') return null;
  if (!path.startsWith('/')) return "must start with '/'";
  if (path.length < minLength) return 'is too short';
  return REQUEST_PATH_CHARS.test(path) ? null : 'may only contain letters, digits and /_-.~';
}

/** fpm_sockets_domain_from_address: a ':' or only digits means TCP, anything else a unix path. */
function isTcpAddress(listen: string): boolean {
  return listen.includes(':') || /^\d*$/.test(listen);
}

function finishPool(pool: PoolDraft, state: ParseState): FpmPool {
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
  };
}

/**
 * Reads `file` and everything it includes as php-fpm 8.2 would (`php-fpm -y file`), through
 * `options.reader` only. Throws FpmConfigError for what php-fpm cannot read either; semantic
 * problems php-fpm also refuses but that do not change the result come back as warnings.
 */
export function parseFpmConfig(file: string, options: FpmConfigOptions): FpmConfig {
  const state: ParseState = {
    options,
    env: options.env ?? {},
    constants: options.constants ?? PHP_ERROR_CONSTANTS,
    global: new Map(),
    daemonize: true,
    pools: [],
    current: null,
    files: [],
    includes: [],
    warnings: [],
    bytesRead: 0,
  };
  readConfigFile(file, state, null, 1);
  if (state.pools.length === 0) {
    state.warnings.push({ file, line: 0, message: 'php-fpm refuses a configuration without any pool section', refusedByPhpFpm: true });
  }
  return {
    file,
    global: finishGlobal(state),
    pools: state.pools.map((pool) => finishPool(pool, state)),
    files: state.files,
    warnings: state.warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Listen addresses: what php-fpm binds for a `listen` value (fpm_sockets.c, checked with `ss`).

export type TcpScope =
  /** Bare port or [::]: php-fpm binds [::] without IPV6_V6ONLY, i.e. every IPv4 and IPv6 address. */
  | 'any'
  /** 0.0.0.0: every IPv4 address. */
  | 'ipv4-any'
  | 'ipv4'
  | 'ipv6'
  /** A name php-fpm resolves when it starts; its address is unknown here. */
  | 'hostname';

export type ListenEndpoint =
  | { kind: 'unix'; path: string; key: string }
  | { kind: 'tcp'; scope: TcpScope; host: string; port: number; key: string }
  | { kind: 'invalid'; raw: string; reason: string; key: string };

const IPV4_MAPPED_PREFIX = '::ffff:';
// On Debian /etc/hosts lists 127.0.0.1 first, and php-fpm binds the first address it resolves.
const LOOPBACK_NAME = 'localhost';
const LOOPBACK_IPV4 = '127.0.0.1';

function parsePort(text: string): number | null {
  if (!/^[ \t]*\+?\d+$/.test(text)) return null;
  const port = Number.parseInt(text, 10);
  return port >= MIN_TCP_PORT && port <= MAX_TCP_PORT ? port : null;
}

/** WHATWG host parsing: canonical IPv6, and IPv4 in inet_aton's forms (127.1, 0x7f000001, 0). */
function parseHost(host: string): string | null {
  try {
    return new URL(`http://${host.includes(':') ? `[${host}]` : host}/`).hostname;
  } catch {
    return null;
  }
}

function ipv4FromMapped(ipv6: string): string | null {
  const match = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ipv6);
  if (match?.[1] === undefined || match[2] === undefined) return null;
  const high = Number.parseInt(match[1], 16);
  const low = Number.parseInt(match[2], 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

function tcpEndpoint(scope: TcpScope, host: string, port: number): ListenEndpoint {
  const shown = scope === 'any' || scope === 'ipv6' ? `[${host}]` : host;
  return { kind: 'tcp', scope, host, port, key: `tcp:${shown}:${port}` };
}

function invalidEndpoint(raw: string, reason: string): ListenEndpoint {
  return { kind: 'invalid', raw, reason, key: `invalid:${raw}` };
}

function classifyHost(rawHost: string, port: number, raw: string): ListenEndpoint {
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  if (host === '') return invalidEndpoint(raw, 'the address before the port is empty');
  if (host.toLowerCase() === LOOPBACK_NAME) return tcpEndpoint('ipv4', LOOPBACK_IPV4, port);
  const parsed = parseHost(host);
  if (parsed === null) return invalidEndpoint(raw, `'${host}' is neither an IP address nor a host name`);
  if (parsed.startsWith('[')) {
    const ipv6 = parsed.slice(1, -1);
    if (ipv6 === '::') return tcpEndpoint('any', '::', port);
    const mapped = ipv6.startsWith(IPV4_MAPPED_PREFIX) ? ipv4FromMapped(ipv6) : null;
    if (mapped === null) return tcpEndpoint('ipv6', ipv6, port);
    return tcpEndpoint(mapped === '0.0.0.0' ? 'ipv4-any' : 'ipv4', mapped, port);
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(parsed)) return tcpEndpoint(parsed === '0.0.0.0' ? 'ipv4-any' : 'ipv4', parsed, port);
  return tcpEndpoint('hostname', parsed, port);
}

/**
 * The endpoint a pool's `listen` (as FpmPool.listen holds it: unix paths already absolute)
 * binds, with a canonical key: equal keys always collide; `listensOverlap` also sees wildcards.
 */
export function normalizeListen(listen: string): ListenEndpoint {
  if (listen === '') return invalidEndpoint(listen, 'the address is empty');
  if (!isTcpAddress(listen)) {
    const path = posix.normalize(listen).replace(/(.)\/+$/, '$1');
    return { kind: 'unix', path, key: `unix:${path}` };
  }
  const colon = listen.lastIndexOf(':');
  const portText = colon === -1 ? listen : listen.slice(colon + 1);
  const port = parsePort(portText);
  if (port === null) return invalidEndpoint(listen, `'${portText}' is not a port between ${MIN_TCP_PORT} and ${MAX_TCP_PORT}`);
  return colon === -1 ? tcpEndpoint('any', '::', port) : classifyHost(listen.slice(0, colon), port, listen);
}

function isIpv4Family(scope: TcpScope): boolean {
  return scope === 'ipv4' || scope === 'ipv4-any';
}

/** Whether two endpoints cannot both be bound (same socket path, or same port and addresses that meet). */
export function listensOverlap(a: ListenEndpoint, b: ListenEndpoint): boolean {
  if (a.kind === 'invalid' || b.kind === 'invalid') return false;
  if (a.kind === 'unix' || b.kind === 'unix') return a.key === b.key;
  if (a.port !== b.port) return false;
  if (a.key === b.key || a.scope === 'any' || b.scope === 'any') return true;
  if (a.scope === 'ipv4-any' || b.scope === 'ipv4-any') {
    const other = a.scope === 'ipv4-any' ? b : a;
    // A host name may resolve to an IPv4 address: assume the worst.
    return isIpv4Family(other.scope) || other.scope === 'hostname';
  }
  return false;
}

export interface FpmInstancePools {
  name: string;
  pools: readonly FpmPool[];
}

export interface ListenUse {
  instance: string;
  /** The pool, or `<pool>_status` for its pm.status_listen listener. */
  pool: string;
  listen: string;
  endpoint: ListenEndpoint;
  file: string;
  line: number;
}

export interface ListenConflict {
  first: ListenUse;
  second: ListenUse;
  /** The shared address, or both addresses when a wildcard covers the other one. */
  address: string;
  message: string;
}

/**
 * Where a unix socket path really is: the caller resolves symlinked directories (IO) and passes
 * the answer in, so that finding conflicts stays pure. The identity when nothing is known.
 */
export type ListenResolver = (listen: string) => string;

function collectListenUses(instance: FpmInstancePools, resolve: ListenResolver): ListenUse[] {
  const uses: ListenUse[] = [];
  for (const pool of instance.pools) {
    const listeners: [string, string | null, SourceRef | null][] = [
      [pool.name, pool.listen, pool.listenAt],
      [`${pool.name}${STATUS_LISTENER_SUFFIX}`, pool.statusListen, pool.statusListenAt],
    ];
    for (const [name, listen, at] of listeners) {
      if (listen === null) continue;
      const where = at ?? pool;
      uses.push({ instance: instance.name, pool: name, listen, endpoint: normalizeListen(resolve(listen)), file: where.file, line: where.line });
    }
  }
  return uses;
}

function displayEndpoint(endpoint: ListenEndpoint): string {
  return endpoint.key.replace(/^(unix|tcp|invalid):/, '');
}

function describeConflict(first: ListenUse, second: ListenUse): { address: string; message: string } {
  const a = displayEndpoint(first.endpoint);
  const b = displayEndpoint(second.endpoint);
  const address = a === b ? a : `${a} and ${b}`;
  const side = (use: ListenUse): string => `instance '${use.instance}' pool '${use.pool}' (${use.file}:${use.line}, listen = ${use.listen})`;
  const verb = a === b ? `both listen on ${a}` : `listen on ${a} and ${b}, which overlap`;
  return {
    address,
    message: `${side(first)} and ${side(second)} ${verb}. Give each pool its own socket path or port.`,
  };
}

/** The first listener seen of each kind on one port: enough to find what a new one overlaps. */
interface PortUses {
  byKey: Map<string, ListenUse>;
  /** The first of any scope (a wildcard `any` overlaps it). */
  first: ListenUse;
  any: ListenUse | null;
  ipv4Any: ListenUse | null;
  /** The first IPv4 address or host name (an `ipv4-any` overlaps it). */
  ipv4OrHostname: ListenUse | null;
}

function earliest(uses: readonly (ListenUse | null | undefined)[], order: Map<ListenUse, number>): ListenUse | null {
  let best: ListenUse | null = null;
  for (const use of uses) {
    if (use !== null && use !== undefined && (best === null || order.get(use)! < order.get(best)!)) best = use;
  }
  return best;
}

/** The earliest listener on this port that `use` cannot be bound together with (see listensOverlap). */
function findOverlapOnPort(ports: PortUses, use: ListenUse, order: Map<ListenUse, number>): ListenUse | null {
  const endpoint = use.endpoint;
  if (endpoint.kind !== 'tcp') return null;
  if (endpoint.scope === 'any') return ports.first;
  const candidates = [ports.byKey.get(endpoint.key), ports.any];
  if (isIpv4Family(endpoint.scope) || endpoint.scope === 'hostname') candidates.push(ports.ipv4Any);
  if (endpoint.scope === 'ipv4-any') candidates.push(ports.ipv4OrHostname);
  return earliest(candidates, order);
}

function rememberOnPort(ports: Map<number, PortUses>, use: ListenUse): void {
  const endpoint = use.endpoint;
  if (endpoint.kind !== 'tcp') return;
  let entry = ports.get(endpoint.port);
  if (entry === undefined) {
    entry = { byKey: new Map(), first: use, any: null, ipv4Any: null, ipv4OrHostname: null };
    ports.set(endpoint.port, entry);
  }
  if (!entry.byKey.has(endpoint.key)) entry.byKey.set(endpoint.key, use);
  if (endpoint.scope === 'any') entry.any ??= use;
  if (endpoint.scope === 'ipv4-any') entry.ipv4Any ??= use;
  if (endpoint.scope === 'ipv4' || endpoint.scope === 'hostname') entry.ipv4OrHostname ??= use;
}

/**
 * Listeners that cannot be bound together, between instances and inside one (php-fpm would fail
 * to start on the latter too): each listener that overlaps an earlier one is reported once, with
 * the earliest it overlaps. Linear in the number of listeners (a thousand instances on one
 * socket give 999 conflicts, not half a million). Listeners php-fpm cannot bind are skipped.
 * `resolve` gives the real path of a unix socket (symlinked directories resolved by the caller).
 */
export function findListenConflicts(
  instances: readonly FpmInstancePools[], resolve: ListenResolver = (listen) => listen,
): ListenConflict[] {
  const uses = instances.flatMap((instance) => collectListenUses(instance, resolve));
  const order = new Map(uses.map((use, index) => [use, index]));
  const unix = new Map<string, ListenUse>();
  const ports = new Map<number, PortUses>();
  const conflicts: ListenConflict[] = [];
  for (const use of uses) {
    let first: ListenUse | null = null;
    if (use.endpoint.kind === 'unix') {
      first = unix.get(use.endpoint.key) ?? null;
      if (first === null) unix.set(use.endpoint.key, use);
    } else if (use.endpoint.kind === 'tcp') {
      const onPort = ports.get(use.endpoint.port);
      first = onPort === undefined ? null : findOverlapOnPort(onPort, use, order);
      rememberOnPort(ports, use);
    }
    if (first !== null) conflicts.push({ first, second: use, ...describeConflict(first, use) });
  }
  return conflicts;
}

// ---------------------------------------------------------------------------------------------
// Filesystem edge: glob(3) as php-fpm calls it, and the reader that uses it.

/** glob(3) gave up (GLOB_ABORTED): a directory the pattern has to list cannot be read. */
export class GlobAbortedError extends Error {
  constructor(directory: string, cause: unknown) {
    super(`cannot read directory '${directory}': ${describeCause(cause)}`);
    this.name = 'GlobAbortedError';
  }
}

const CHARACTER_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', xdigit: '0-9A-Fa-f', punct: '!-/:-@\\[-`{-~',
};

function hasGlobMagic(segment: string): boolean {
  for (let i = 0; i < segment.length; i += 1) {
    const ch = segment[i];
    if (ch === '\\') i += 1;
    else if (ch === '*' || ch === '?') return true;
    else if (ch === '[' && segment.indexOf(']', i + 2) !== -1) return true;
  }
  return false;
}

function unescapeGlob(segment: string): string {
  return segment.replace(/\\(.)/g, '$1');
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** Translates one bracket expression starting at `start` ('['); null when it is not closed. */
function translateBracket(segment: string, start: number): { source: string; end: number } | null {
  let i = start + 1;
  let source = '[';
  if (segment[i] === '!' || segment[i] === '^') {
    source += '^';
    i += 1;
  }
  let first = true;
  while (i < segment.length) {
    const ch = segment.charAt(i);
    if (ch === ']' && !first) return { source: `${source}]`, end: i + 1 };
    first = false;
    const cls = /^\[:([a-z]+):\]/.exec(segment.slice(i));
    if (cls?.[1] !== undefined && CHARACTER_CLASSES[cls[1]] !== undefined) {
      source += CHARACTER_CLASSES[cls[1]];
      i += cls[0].length;
    } else if (ch === '-' && segment[i + 1] !== ']') {
      source += '-';
      i += 1;
    } else {
      source += escapeRegExp(ch === '\\' ? segment.charAt(i + 1) : ch);
      i += ch === '\\' ? 2 : 1;
    }
  }
  return null;
}

/** fnmatch() for one path segment, as glob(3) uses it (no FNM_PERIOD exception). */
export function globSegmentToRegExp(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length;) {
    const ch = segment.charAt(i);
    if (ch === '*') {
      source += '[^/]*';
      i += 1;
    } else if (ch === '?') {
      source += '[^/]';
      i += 1;
    } else if (ch === '[') {
      const bracket = translateBracket(segment, i);
      source += bracket === null ? '\\[' : bracket.source;
      i = bracket === null ? i + 1 : bracket.end;
    } else if (ch === '\\' && i + 1 < segment.length) {
      source += escapeRegExp(segment.charAt(i + 1));
      i += 2;
    } else {
      source += escapeRegExp(ch);
      i += 1;
    }
  }
  return new RegExp(`^${source}$`, 's');
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function pathExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDirectory(directory: string): string[] {
  try {
    // readdir(3) also yields '.' and '..', which a pattern like '.*' matches in glob(3).
    return ['.', '..', ...readdirSync(directory === '' ? '.' : directory)];
  } catch (error) {
    throw new GlobAbortedError(directory === '' ? '.' : directory, error);
  }
}

function joinSegment(directory: string, name: string): string {
  if (directory === '') return name;
  return directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Expands one magic segment in each candidate directory. */
function expandMagicSegment(candidates: string[], segment: string, isLast: boolean): string[] {
  const pattern = globSegmentToRegExp(segment);
  const explicitDot = segment.startsWith('.') || segment.startsWith('\\.');
  return candidates.flatMap((directory) => listDirectory(directory)
    .filter((name) => (explicitDot || !name.startsWith('.')) && pattern.test(name))
    .map((name) => joinSegment(directory, name))
    .filter((path) => isLast || isDirectory(path)));
}

/**
 * glob(pattern, GLOB_ERR | GLOB_MARK) for `*`, `?`, `[...]` and `\` escapes, as glibc does it:
 * the directory part up to the first wildcard is fixed; from there every segment with a
 * wildcard or a backslash lists its directories (GLOB_ERR: one that cannot be listed throws
 * GlobAbortedError), plain segments only check existence; a trailing '/' keeps directories.
 */
export function globFs(pattern: string): string[] {
  const onlyDirectories = pattern.endsWith('/');
  const segments = pattern.split('/');
  const firstWildcard = segments.findIndex(hasGlobMagic);
  const start = firstWildcard === -1 ? segments.length - 1 : firstWildcard;
  const fixed = unescapeGlob(segments.slice(0, start).join('/'));
  let candidates = [fixed === '' && pattern.startsWith('/') ? '/' : fixed];
  const rest = segments.slice(start).filter((segment) => segment !== '');
  if (rest.length === 0) candidates = candidates.filter(pathExists);
  rest.forEach((segment, index) => {
    const isLast = index === rest.length - 1;
    if (hasGlobMagic(segment) || segment.includes('\\')) {
      candidates = expandMagicSegment(candidates, segment, isLast);
    } else {
      candidates = candidates
        .map((directory) => joinSegment(directory, segment))
        .filter((path) => (isLast ? pathExists(path) : isDirectory(path)));
    }
  });
  return candidates
    .filter((path) => !onlyDirectories || isDirectory(path))
    .sort(compareBytes)
    .map((path) => (isDirectory(path) && !path.endsWith('/') ? `${path}/` : path));
}

export const fsConfigReader: FpmConfigReader = {
  // Regular files only (a FIFO would hang the read, /dev/zero never end), at most FPM_CONFIG_MAX_BYTES.
  readFile: (path) => readRegularFile(path, { maxBytes: FPM_CONFIG_MAX_BYTES }),
  glob: globFs,
};

export type LoadFpmConfigOptions = Omit<FpmConfigOptions, 'reader'> & { reader?: FpmConfigReader };

/**
 * parseFpmConfig over the real filesystem. `env` defaults to this process's environment,
 * which is what a php-fpm started by this process inherits.
 */
export function loadFpmConfig(path: string, options: LoadFpmConfigOptions = {}): FpmConfig {
  return parseFpmConfig(path, { ...options, reader: options.reader ?? fsConfigReader, env: options.env ?? process.env });
}
