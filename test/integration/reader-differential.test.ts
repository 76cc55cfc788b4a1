// The reader against the real bash: every accepted fixture must give exactly the variables bash
// assigns when it sources the file, and every refused fixture must be refused where expected
// without anything being executed (bash never sees refused fixtures).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Declaration } from '../../src/declaration/declaration.js';
import { DeclarationError } from '../../src/errors.js';
import { readDeclaration } from '../../src/declaration/reader.js';
import { splitWords } from '../../src/declaration/words.js';
import { type BashBatch, describeDifferences, FIXED_ENV, runBash } from '../helpers/bash.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/declarations/', import.meta.url));
const MINIMUM_ACCEPTED_FIXTURES = 40;
const MINIMUM_REFUSED_FIXTURES = 15;
const MARKER_PLACEHOLDER = '@MARKER@';
const SPLIT_VARIABLE_PREFIX = 'FPM_slot_';

function listFixtures(kind: 'accepted' | 'refused'): string[] {
  return readdirSync(join(FIXTURES, kind))
    .filter((name) => name.endsWith('.conf'))
    .sort();
}

/** Every string `FPM_slot_*` value that splitWords accepts, with the words it gives. */
function listSplits(declaration: Declaration): { value: string; words: string[] }[] {
  return declaration.variables.flatMap((variable) => {
    if (!variable.name.startsWith(SPLIT_VARIABLE_PREFIX) || variable.value.kind !== 'string') return [];
    const { value } = variable.value;
    return [{ value, words: splitWords(value, { file: declaration.file, line: variable.line, column: variable.column }) }];
  });
}

describe('accepted fixtures: the reader yields what bash assigns', () => {
  const names = listFixtures('accepted');
  const texts = names.map((name) => readFileSync(join(FIXTURES, 'accepted', name), 'utf8'));
  const splitValues = new Set<string>();
  for (const [index, text] of texts.entries()) {
    try {
      const declaration = readDeclaration(text, { file: names[index]!, env: FIXED_ENV });
      for (const split of listSplits(declaration)) splitValues.add(split.value);
    } catch {
      // The fixture's own test reports the refusal.
    }
  }
  const values = [...splitValues];
  const batches: { mode: string; batch: BashBatch }[] = [];

  beforeAll(() => {
    // The last file is empty: what bash assigns by itself when sourcing nothing.
    for (const posix of [false, true]) {
      batches.push({ mode: posix ? 'bash --posix' : 'bash', batch: runBash([...texts, ''], values, { posix }) });
    }
  });

  test(`there are at least ${MINIMUM_ACCEPTED_FIXTURES} accepted fixtures`, () => {
    expect(names.length).toBeGreaterThanOrEqual(MINIMUM_ACCEPTED_FIXTURES);
  });

  test('some FPM_slot_* strings are split and compared', () => {
    expect(values.length).toBeGreaterThanOrEqual(4);
  });

  test.each(names.map((name, index) => [name, index] as const))('%s', (name, index) => {
    const declaration = readDeclaration(readFileSync(join(FIXTURES, 'accepted', name)), { file: name, env: FIXED_ENV });
    expect(declaration.file).toBe(name);
    for (const { mode, batch } of batches) {
      const differences = describeDifferences(declaration, batch.sourcings[index]!, batch.sourcings.at(-1)!, FIXED_ENV);
      expect(differences, mode).toEqual([]);
      for (const split of listSplits(declaration)) {
        expect(split.words, `${mode}: words=( ${split.value} )`).toEqual(batch.splits[values.indexOf(split.value)]);
      }
    }
  });
});

/** Fixture → where the refusal points → a fragment of its message. */
const REFUSED: readonly (readonly [string, number, number, string])[] = [
  ['and-list.conf', 2, 5, 'and-list "&&" found'],
  ['ansi-c-quoting.conf', 1, 3, `ANSI-C quoting "$'" found`],
  ['arithmetic-command.conf', 1, 1, 'arithmetic command "((" found'],
  ['arithmetic-expansion.conf', 1, 3, 'arithmetic expansion "$((" found'],
  ['array-referenced-as-string.conf', 2, 3, '"$A" naming an array found'],
  ['assignment-before-command.conf', 1, 5, 'command "touch" found'],
  ['background.conf', 1, 5, 'background operator "&" found'],
  ['backslash-at-end-of-file.conf', 2, 4, 'backslash at the end of the file found'],
  ['backtick.conf', 1, 3, 'command substitution "`" found'],
  ['bash-managed-assignment.conf', 2, 1, 'variable "IFS" managed by bash found'],
  ['bash-managed-read.conf', 1, 9, 'variable "$PWD" managed by bash found'],
  ['brace-expansion-in-array.conf', 1, 4, 'unquoted brace "{" found'],
  ['brace-expansion-in-export.conf', 1, 10, 'unquoted brace "{" found'],
  ['command.conf', 2, 1, 'command "touch" found'],
  ['command-substitution.conf', 2, 22, 'command substitution "$(" found'],
  ['comment-glued-to-array.conf', 1, 6, '"#" right after the ")" closing an array found'],
  ['declare.conf', 1, 1, '"declare" found'],
  ['dos-line-endings.conf', 1, 4, 'DOS line endings (CR LF) found'],
  ['double-semicolon.conf', 1, 4, 'case terminator ";;" found'],
  ['eval.conf', 1, 1, 'command "eval" found'],
  ['export-array.conf', 1, 8, 'exported array "A" found'],
  ['export-option.conf', 1, 8, 'export option "-n" found'],
  ['function-definition.conf', 1, 1, 'function definition "marker" found'],
  ['glob-from-expansion.conf', 2, 4, 'unquoted "$P" in an array holding "*" found'],
  ['glob-in-array.conf', 1, 9, 'unquoted glob character "*" found'],
  ['here-document.conf', 1, 5, 'here-document "<<" found'],
  ['invalid-name-digit.conf', 1, 1, 'invalid variable name "1A" found'],
  ['invalid-name-dash.conf', 1, 1, 'invalid variable name "A-B" found'],
  ['invalid-utf8.conf', 2, 4, 'invalid UTF-8 byte 0xff found'],
  ['keyword-if.conf', 1, 1, 'keyword "if" found'],
  ['keyword-double-bracket.conf', 1, 1, 'keyword "[[" found'],
  ['lone-dollar-in-array.conf', 2, 6, 'unquoted "$" in an array element found'],
  ['locale-quoting.conf', 1, 3, 'locale translation "$\\"" found'],
  ['nul-byte.conf', 1, 4, 'NUL byte found'],
  ['or-list.conf', 1, 5, 'or-list "||" found'],
  ['parameter-default.conf', 1, 3, 'parameter expansion "${B:" found'],
  ['pipe.conf', 1, 5, 'pipe "|" found'],
  ['positional-parameter.conf', 1, 3, 'positional parameter "$1" found'],
  ['process-substitution.conf', 1, 6, 'process substitution "<(" found'],
  ['readonly.conf', 1, 1, '"readonly" found'],
  ['redirection.conf', 1, 5, 'redirection ">" found'],
  ['shell-unset-in-environment.conf', 1, 3, '"$SHELL" found while SHELL is not in the environment'],
  ['source.conf', 1, 1, 'command "source" found'],
  ['special-parameter.conf', 1, 3, 'special parameter "$$" found'],
  ['string-assigned-to-array.conf', 2, 1, 'string assigned to the array "A" found'],
  ['subscript-assignment.conf', 1, 2, 'array subscript "A[" found'],
  ['subscript-in-array.conf', 1, 4, 'unquoted glob character "[" found'],
  ['subshell.conf', 1, 1, 'parenthesis "(" found'],
  ['text-after-array.conf', 1, 6, '"$" right after the ")" closing an array found'],
  ['tilde.conf', 1, 3, 'unquoted tilde "~" found'],
  ['unterminated-array.conf', 1, 12, 'unterminated array "(" found'],
  ['unterminated-braced-expansion.conf', 1, 3, 'unterminated "${" found'],
  ['unterminated-double-quote.conf', 1, 3, 'unterminated double quote found'],
  ['unterminated-single-quote.conf', 1, 3, 'unterminated single quote found'],
];

/** Replaces the placeholder in the raw bytes, so that fixtures with invalid UTF-8 stay intact. */
function insertMarker(bytes: Buffer, marker: string): Buffer {
  const pieces: Buffer[] = [];
  let rest = bytes;
  for (let at = rest.indexOf(MARKER_PLACEHOLDER); at !== -1; at = rest.indexOf(MARKER_PLACEHOLDER)) {
    pieces.push(rest.subarray(0, at), Buffer.from(marker));
    rest = rest.subarray(at + MARKER_PLACEHOLDER.length);
  }
  return Buffer.concat([...pieces, rest]);
}

describe('refused fixtures: refused where expected, nothing executed', () => {
  const names = listFixtures('refused');

  test(`there are at least ${MINIMUM_REFUSED_FIXTURES} refused fixtures, each in the table`, () => {
    expect(names.length).toBeGreaterThanOrEqual(MINIMUM_REFUSED_FIXTURES);
    expect(REFUSED.map(([name]) => name).sort()).toEqual(names);
  });

  test.each(REFUSED)('%s is refused at %i:%i', (name, line, column, fragment) => {
    const scratch = mkdtempSync(join(tmpdir(), 'reader-refused-'));
    try {
      const marker = join(scratch, 'marker');
      const bytes = readFileSync(join(FIXTURES, 'refused', name));
      expect(bytes.includes(MARKER_PLACEHOLDER), 'the fixture holds a line that would create the marker').toBe(true);
      let refusal: unknown;
      try {
        readDeclaration(insertMarker(bytes, marker), { file: name, env: FIXED_ENV });
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(DeclarationError);
      const declarationError = refusal as DeclarationError;
      expect(declarationError.exitCode).toBe(6);
      expect(declarationError.location).toEqual({ file: name, line, column });
      expect(declarationError.message.startsWith(`${name}:${line}:${column}: `)).toBe(true);
      expect(declarationError.message).toContain(fragment);
      expect(declarationError.fix).not.toBe('');
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
