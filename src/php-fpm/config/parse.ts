// Reading a whole php-fpm configuration the way php-fpm 8.2 does (`php-fpm -y file`): the main
// file, its `include` globs in order (a relative pattern from the prefix, at most 5 nested
// files, a pattern matching nothing only warned about), every line through the INI scanner and
// its statements through the directives. Pure: files come from the caller's reader, asked for
// as steps (steps.ts), so one algorithm serves a synchronous reader and the one System.
//
// php-fpm rules this module and the ones it uses reproduce (each one seen with `php-fpm8.2 -tt`,
// following sapi/fpm/fpm/fpm_conf.c, fpm_sockets.c and Zend's INI scanner):
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
import { applyArray, applyEntry, finishGlobal, finishPool, includePrefix, openSection, resolveFromPrefix, type ParseState } from './directives.js';
import { scanLine, type ScanContext } from './ini-scanner.js';
import { runSteps, runStepsAsync } from './steps.js';
import {
  FPM_CONFIG_TOTAL_MAX_BYTES, FpmConfigError, MAX_NESTED_FILES, PHP_ERROR_CONSTANTS, RefusedFileError,
  type AsyncFpmConfigReader, type FpmCommandLine, type FpmConfig, type FpmConfigOptions, type FpmInclude, type SourceRef,
} from './types.js';

/** What the parser asks its reader: a file's text, or the matches of an include pattern. */
export type FileQuestion = { kind: 'read'; path: string } | { kind: 'glob'; pattern: string };
type FileAnswer = string | string[];
type FileSteps<Result> = Generator<FileQuestion, Result, FileAnswer>;

function* askText(path: string): FileSteps<string> {
  const answer = yield { kind: 'read', path };
  if (typeof answer !== 'string') throw new TypeError(`the reader answered the read of '${path}' with a list`);
  return answer;
}

function* askMatches(pattern: string): FileSteps<string[]> {
  const answer = yield { kind: 'glob', pattern };
  if (typeof answer === 'string') throw new TypeError(`the reader answered the glob '${pattern}' with a text`);
  return answer;
}

function describeCause(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function* includeFiles(pattern: string, state: ParseState, at: SourceRef, depth: number): FileSteps<void> {
  const resolved = resolveFromPrefix(pattern, includePrefix(state.options));
  let matches: string[];
  try {
    matches = yield* askMatches(resolved);
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
    yield* readConfigFile(file, state, at, depth + 1);
  }
}

function describeReadFailure(file: string, includedFrom: SourceRef | null, error: unknown): FpmConfigError {
  const at = includedFrom ?? { file, line: 0 };
  if (error instanceof RefusedFileError) {
    // A FIFO, a device or a huge file: refused before it is read, so nothing hangs or fills memory.
    const fix = error.reason === 'not-regular'
      ? `php-fpm-multi reads only regular files (a symlink to one is fine): ${includedFrom === null ? 'point config= at the php-fpm configuration file' : 'remove it from the include pattern or replace it with a regular file'}`
      : `Each php-fpm configuration file is limited to ${error.maxBytes / 1024 / 1024} MiB: ${includedFrom === null ? 'check that config= names the php-fpm configuration' : 'check what the include pattern matches'}`;
    return new FpmConfigError(at, `cannot read '${file}': ${error.problem}`, `${fix}.`);
  }
  return new FpmConfigError(at, `cannot read '${file}' (${describeCause(error)})`, includedFrom === null ? 'Check the path given to php-fpm -y and its permissions.' : 'Fix the permissions of the included file or remove it from the include pattern.');
}

function* readConfigFile(file: string, state: ParseState, includedFrom: SourceRef | null, depth: number): FileSteps<void> {
  if (depth > MAX_NESTED_FILES) {
    throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `including '${file}' nests more than ${MAX_NESTED_FILES} files`, `Flatten the includes: php-fpm refuses more than ${MAX_NESTED_FILES} nested files (a file including itself also ends here).`);
  }
  let text: string;
  try {
    text = yield* askText(file);
  } catch (error) {
    throw describeReadFailure(file, includedFrom, error);
  }
  state.bytesRead += Buffer.byteLength(text);
  if (state.bytesRead > FPM_CONFIG_TOTAL_MAX_BYTES) {
    throw new FpmConfigError(includedFrom ?? { file, line: 0 }, `reading '${file}' makes the configuration and its includes larger than the limit of ${FPM_CONFIG_TOTAL_MAX_BYTES / 1024 / 1024} MiB in all`, 'Check what the include patterns match: a php-fpm configuration is a few KiB per pool.');
  }
  state.files.push(file);
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (const [index, line] of lines.entries()) {
    if (line === '') continue;
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
    if (pendingInclude !== null) yield* includeFiles(pendingInclude, state, at, depth);
  }
}

/** The whole reading as steps: every file it needs is asked for (see FileQuestion). */
export function* parseFpmConfigSteps(file: string, options: FpmCommandLine): FileSteps<FpmConfig> {
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
  yield* readConfigFile(file, state, null, 1);
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

/**
 * Reads `file` and everything it includes as php-fpm 8.2 would (`php-fpm -y file`), through
 * `options.reader` only. Throws FpmConfigError for what php-fpm cannot read either; semantic
 * problems php-fpm also refuses but that do not change the result come back as warnings.
 */
export function parseFpmConfig(file: string, options: FpmConfigOptions): FpmConfig {
  const { reader } = options;
  return runSteps(parseFpmConfigSteps(file, options), (question): FileAnswer => {
    switch (question.kind) {
      case 'read': return reader.readFile(question.path);
      case 'glob': return reader.glob(question.pattern);
      default: return unreachable(question);
    }
  });
}

/** parseFpmConfig through a reader whose answers are promises (the one System: load.ts). */
export function parseFpmConfigAsync(file: string, options: FpmCommandLine & { reader: AsyncFpmConfigReader }): Promise<FpmConfig> {
  const { reader } = options;
  return runStepsAsync(parseFpmConfigSteps(file, options), (question): Promise<FileAnswer> => {
    switch (question.kind) {
      case 'read': return reader.readFile(question.path);
      case 'glob': return reader.glob(question.pattern);
      default: return unreachable(question);
    }
  });
}

function unreachable(question: never): never {
  throw new TypeError(`unknown question ${JSON.stringify(question)}`);
}
