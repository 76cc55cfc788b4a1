// glob(3) as php-fpm calls it for `include` (GLOB_ERR | GLOB_MARK), as glibc does it: `*`, `?`,
// `[...]` with classes, `\` escapes; matches in byte order, directories marked with '/'. Pure:
// the directory listings and file types it needs are asked for as steps (steps.ts), answered by
// the edge (load.ts) from the one System, or from node:fs for the synchronous reader.

/** glob(3) gave up (GLOB_ABORTED): a directory the pattern has to list cannot be read. */
export class GlobAbortedError extends Error {
  constructor(directory: string, cause: unknown) {
    super(`cannot read directory '${directory}': ${cause instanceof Error ? cause.message : String(cause)}`);
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

/** What the glob asks: a directory's names, or a path's type (following symlinks or not). */
export type DirectoryQuestion =
  | { kind: 'list'; directory: string }
  | { kind: 'stat'; path: string }
  | { kind: 'lstat'; path: string };
/** 'list' answers names (without '.' and '..'); 'stat' and 'lstat' answer a FileKind-like word. */
export type DirectoryAnswer = string[] | string;
export type GlobSteps<Result> = Generator<DirectoryQuestion, Result, DirectoryAnswer>;

function* isDirectory(path: string): GlobSteps<boolean> {
  try {
    return (yield { kind: 'stat', path }) === 'directory';
  } catch {
    return false;
  }
}

function* pathExists(path: string): GlobSteps<boolean> {
  try {
    yield { kind: 'lstat', path };
    return true;
  } catch {
    return false;
  }
}

function* listDirectory(directory: string): GlobSteps<string[]> {
  const shown = directory === '' ? '.' : directory;
  let names: DirectoryAnswer;
  try {
    names = yield { kind: 'list', directory: shown };
  } catch (error) {
    throw new GlobAbortedError(shown, error);
  }
  if (typeof names === 'string') throw new TypeError(`the listing of '${shown}' is not a list`);
  // readdir(3) also yields '.' and '..', which a pattern like '.*' matches in glob(3).
  return ['.', '..', ...names];
}

function joinSegment(directory: string, name: string): string {
  if (directory === '') return name;
  return directory.endsWith('/') ? `${directory}${name}` : `${directory}/${name}`;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Expands one magic segment in each candidate directory. */
function* expandMagicSegment(candidates: string[], segment: string, isLast: boolean): GlobSteps<string[]> {
  const pattern = globSegmentToRegExp(segment);
  const explicitDot = segment.startsWith('.') || segment.startsWith('\\.');
  const matches: string[] = [];
  for (const directory of candidates) {
    for (const name of yield* listDirectory(directory)) {
      if (!(explicitDot || !name.startsWith('.')) || !pattern.test(name)) continue;
      const path = joinSegment(directory, name);
      if (isLast || (yield* isDirectory(path))) matches.push(path);
    }
  }
  return matches;
}

/**
 * glob(pattern, GLOB_ERR | GLOB_MARK) as steps: the directory part up to the first wildcard is
 * fixed; from there every segment with a wildcard or a backslash lists its directories
 * (GLOB_ERR: one that cannot be listed throws GlobAbortedError), plain segments only check
 * existence; a trailing '/' keeps directories.
 */
export function* globSteps(pattern: string): GlobSteps<string[]> {
  const onlyDirectories = pattern.endsWith('/');
  const segments = pattern.split('/');
  const firstWildcard = segments.findIndex(hasGlobMagic);
  const start = firstWildcard === -1 ? segments.length - 1 : firstWildcard;
  const fixed = unescapeGlob(segments.slice(0, start).join('/'));
  let candidates = [fixed === '' && pattern.startsWith('/') ? '/' : fixed];
  const rest = segments.slice(start).filter((segment) => segment !== '');
  if (rest.length === 0) candidates = yield* keep(candidates, pathExists);
  for (const [index, segment] of rest.entries()) {
    const isLast = index === rest.length - 1;
    if (hasGlobMagic(segment) || segment.includes('\\')) {
      candidates = yield* expandMagicSegment(candidates, segment, isLast);
    } else {
      const joined = candidates.map((directory) => joinSegment(directory, segment));
      candidates = yield* keep(joined, isLast ? pathExists : isDirectory);
    }
  }
  if (onlyDirectories) candidates = yield* keep(candidates, isDirectory);
  const marked: string[] = [];
  for (const path of candidates.sort(compareBytes)) {
    marked.push((yield* isDirectory(path)) && !path.endsWith('/') ? `${path}/` : path);
  }
  return marked;
}

/** The paths for which `test` answers true, in order. */
function* keep(paths: string[], test: (path: string) => GlobSteps<boolean>): GlobSteps<string[]> {
  const kept: string[] = [];
  for (const path of paths) {
    if (yield* test(path)) kept.push(path);
  }
  return kept;
}
