// Runs the real bash on declaration files and reports what it assigned, so that the reader can be
// compared with the shell it imitates. One bash process serves a whole batch: each file is
// sourced in its own subshell, in an empty working directory, with a small fixed environment.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Declaration, ShellValue } from '../../src/declaration/declaration.js';

export const BASH_PATH = '/bin/bash';

/** The whole environment of bash, and the `env` given to the reader. */
export const FIXED_ENV: Readonly<Record<string, string>> = {
  HOME: '/root',
  PATH: '/usr/bin:/bin',
  BASE: '/etc/php',
  SPACED: '  two  words ',
  EMPTY: '',
};

const BASH_TIMEOUT_MS = 60_000;
const BASH_OUTPUT_LIMIT_BYTES = 256 * 1024 * 1024;

export type BashVariable = ShellValue | { kind: 'unset' } | { kind: 'other'; attributes: string };

export interface BashSourcing {
  /** Exit status of `source`. */
  status: number;
  stderr: string;
  /** Names `compgen -v` listed before sourcing. */
  before: ReadonlySet<string>;
  /** Every variable after sourcing. */
  after: ReadonlyMap<string, BashVariable>;
}

export interface BashBatch {
  sourcings: BashSourcing[];
  /** For each value to split: the words of `eval "words=( $value )"`, or undefined if eval failed. */
  splits: (string[] | undefined)[];
}

const SCRIPT_PATH = fileURLToPath(new URL('./source-and-dump.bash', import.meta.url));

/** Fails loudly when bash is missing: the comparison is the point of the test. */
export function requireBash(): void {
  if (!existsSync(BASH_PATH)) throw new Error(`${BASH_PATH} is missing: the differential tests need the real bash`);
}

/**
 * Sources each file with bash and evaluates `words=( $value )` for each value, all in one bash
 * process. Bash executes what it is given: give it only text the reader accepted, or text known
 * to be harmless.
 */
export function runBash(
  files: readonly string[],
  values: readonly string[],
  options: { posix: boolean; env?: Readonly<Record<string, string>> },
): BashBatch {
  requireBash();
  const scratch = mkdtempSync(join(tmpdir(), 'reader-bash-'));
  try {
    const cwd = join(scratch, 'cwd');
    const stderrFile = join(scratch, 'stderr');
    const paths = files.map((text, index) => {
      const path = join(scratch, `declaration-${index}.conf`);
      writeFileSync(path, text);
      return path;
    });
    writeFileSync(stderrFile, '');
    mkdirSync(cwd);
    const modeArguments = options.posix ? ['--posix'] : [];
    const result = spawnSync(
      BASH_PATH,
      [...modeArguments, '--norc', '--noprofile', SCRIPT_PATH, cwd, stderrFile, String(paths.length), ...paths, ...values],
      { env: { ...(options.env ?? FIXED_ENV) }, cwd, timeout: BASH_TIMEOUT_MS, maxBuffer: BASH_OUTPUT_LIMIT_BYTES },
    );
    if (result.error !== undefined) throw result.error;
    if (result.status !== 0) throw new Error(`bash failed (${result.status}): ${result.stderr.toString()}`);
    return parseBatch(result.stdout.toString('utf8').split('\0'), files.length, values.length);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function parseBatch(fields: string[], fileCount: number, valueCount: number): BashBatch {
  let position = 0;
  const next = (): string => {
    const field = fields[position++];
    if (field === undefined) throw new Error('bash output ended early');
    return field;
  };
  const nextList = (count: number): string[] => Array.from({ length: count }, next);
  const sourcings: BashSourcing[] = [];
  for (let file = 0; file < fileCount; file++) {
    const status = Number(next());
    const stderr = next();
    const before = new Set(nextList(Number(next())));
    const after = new Map<string, BashVariable>();
    const afterCount = Number(next());
    for (let variable = 0; variable < afterCount; variable++) {
      const name = next();
      const kind = next();
      if (kind === 'string') after.set(name, { kind: 'string', value: next() });
      else if (kind === 'array') after.set(name, { kind: 'array', elements: nextList(Number(next())) });
      else if (kind === 'unset') after.set(name, { kind: 'unset' });
      else after.set(name, { kind: 'other', attributes: next() });
    }
    sourcings.push({ status, stderr, before, after });
  }
  const splits: (string[] | undefined)[] = [];
  for (let value = 0; value < valueCount; value++) {
    splits.push(next() === 'ok' ? nextList(Number(next())) : undefined);
  }
  return { sourcings, splits };
}

/**
 * Differences between what the reader yields and what bash assigned, as readable lines; empty
 * when they agree. `baseline` is bash sourcing an empty file: the variables bash adds by itself.
 */
export function describeDifferences(
  declaration: Declaration,
  sourcing: BashSourcing,
  baseline: BashSourcing,
  env: Readonly<Record<string, string>>,
): string[] {
  const differences: string[] = [];
  if (sourcing.status !== 0 || sourcing.stderr !== '') {
    differences.push(`bash failed with status ${sourcing.status}: ${sourcing.stderr}`);
  }
  const read = new Map(declaration.variables.map((variable) => [variable.name, variable.value]));
  for (const [name, value] of read) {
    const actual = sourcing.after.get(name);
    if (!sameValue(value, actual)) differences.push(`${name}: reader ${show(value)}, bash ${show(actual)}`);
  }
  for (const [name, actual] of sourcing.after) {
    if (read.has(name) || name.startsWith('__dt_') || actual.kind === 'unset') continue;
    const envValue = env[name];
    if (envValue !== undefined) {
      if (!sameValue({ kind: 'string', value: envValue }, actual)) {
        differences.push(`${name}: reader left the environment value ${JSON.stringify(envValue)}, bash ${show(actual)}`);
      }
    } else if (!sourcing.before.has(name) && !baseline.after.has(name)) {
      differences.push(`${name}: missed by the reader, bash ${show(actual)}`);
    }
  }
  return differences;
}

function sameValue(expected: ShellValue, actual: BashVariable | undefined): boolean {
  return JSON.stringify(expected) === JSON.stringify(actual);
}

function show(value: BashVariable | undefined): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}
