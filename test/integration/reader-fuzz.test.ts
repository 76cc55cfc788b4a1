// Property: for any file, the reader either refuses it with a DeclarationError or yields exactly
// what bash assigns. Files come from a grammar of valid but tricky pieces, salted with junk
// characters; bash only ever sees the files the reader accepted, in batches.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Declaration } from '../../src/declaration/declaration.js';
import { DeclarationError } from '../../src/errors.js';
import { readDeclaration } from '../../src/declaration/reader.js';
import { splitWords } from '../../src/declaration/words.js';
import { describeDifferences, FIXED_ENV, requireBash, runBash } from '../helpers/bash.js';

const FILE = 'fuzz.conf';
const AT = { file: FILE, line: 1, column: 1 };
/** Each property stops after this long; a batch of files costs one bash process (a few ms). */
const TIME_LIMIT_MS = 4_000;
const RUNS = 150;
const FILES_PER_BATCH = 12;
const TEST_TIMEOUT_MS = 30_000;
/** Fewer accepted files than this would mean the grammar, not the reader, is broken. */
const MINIMUM_COMPARED = 20;

/** String variables, some from the environment; arrays get names of their own, mostly. */
const STRING_NAMES = ['A', 'B', 'FPM_slot_1', '_x1', 'BASE', 'SPACED', 'EMPTY', 'NOPE', 'PATH', 'SHELL'];
const ARRAY_NAMES = ['C', 'FPM_slot_2', 'B'];

const join = (pieces: readonly string[]): string => pieces.join('');

const nameArbitrary = fc.constantFrom(...STRING_NAMES);
const arrayNameArbitrary = fc.constantFrom(...ARRAY_NAMES);
const referenceArbitrary = fc.oneof(
  nameArbitrary.map((name) => `$${name}`),
  nameArbitrary.map((name) => `\${${name}}`),
);
/** Unquoted characters that bash keeps literally in any word (`#` too, when not first). */
const literalArbitrary = fc.constantFrom(...'abXY09/.,:=+-%@^!]#é'.split(''));
const singleQuotedArbitrary = fc
  .array(fc.constantFrom(...'a $"\\\n#`*~{(;\t[='.split('')), { maxLength: 5 })
  .map((chars) => `'${join(chars)}'`);
const doubleQuotedPieceArbitrary = fc.oneof(
  fc.constantFrom('a', ' ', '\t', '\n', "'", '#', '*', '~', '{', '[', '\\', '\\a', '\\\n'),
  fc.constantFrom('\\$', '\\\\', '\\"', '\\`', '$', '$/', "$'"),
  referenceArbitrary,
);
const doubleQuotedArbitrary = fc
  .array(doubleQuotedPieceArbitrary, { maxLength: 5 })
  .map((pieces) => `"${join(pieces)}"`);
const escapeArbitrary = fc.constantFrom(...' #$"\'\\`a*~{(;|&<>\t'.split('')).map((char) => `\\${char}`);
const wordPartArbitrary = fc.oneof(
  { weight: 4, arbitrary: literalArbitrary },
  { weight: 2, arbitrary: singleQuotedArbitrary },
  { weight: 2, arbitrary: doubleQuotedArbitrary },
  { weight: 2, arbitrary: escapeArbitrary },
  { weight: 3, arbitrary: referenceArbitrary },
  { weight: 1, arbitrary: fc.constantFrom('\\\n', '""', "''", '$') },
);
const wordArbitrary = fc.array(wordPartArbitrary, { maxLength: 5 }).map(join);
const nonEmptyWordArbitrary = fc.array(wordPartArbitrary, { minLength: 1, maxLength: 5 }).map(join);
const operatorArbitrary = fc.constantFrom('=', '+=');

const elementSeparatorArbitrary = fc.constantFrom(' ', '\n', '\t', ' # note \\\n', '\n\n  ', ' \\\n ', ' #\n');
const elementArbitrary = fc.tuple(nonEmptyWordArbitrary, elementSeparatorArbitrary).map(join);
const arrayArbitrary = fc
  .tuple(fc.constantFrom('', ' ', '\n'), fc.array(elementArbitrary, { maxLength: 4 }))
  .map(([opening, elements]) => `(${opening}${join(elements)})`);
const stringAssignmentArbitrary = fc.tuple(nameArbitrary, operatorArbitrary, wordArbitrary).map(join);
const arrayAssignmentArbitrary = fc.tuple(arrayNameArbitrary, operatorArbitrary, arrayArbitrary).map(join);
const assignmentArbitrary = fc.oneof(stringAssignmentArbitrary, arrayAssignmentArbitrary);
const exportArbitrary = fc
  .array(fc.oneof(nameArbitrary, stringAssignmentArbitrary), { minLength: 1, maxLength: 3 })
  .map((names) => `export ${names.join(' ')}`);
const statementArbitrary = fc.oneof(
  { weight: 3, arbitrary: assignmentArbitrary },
  {
    weight: 1,
    arbitrary: fc.array(assignmentArbitrary, { minLength: 2, maxLength: 3 }).map((line) => line.join(' ')),
  },
  { weight: 1, arbitrary: exportArbitrary },
);
const statementSeparatorArbitrary = fc.constantFrom('\n', ';', '; ', ' ;\n', ' # comment \\\n', '\n\n', '\t#c\n', ' \\\n;');
const validFileArbitrary = fc
  .array(fc.tuple(statementArbitrary, statementSeparatorArbitrary).map(join), { maxLength: 5 })
  .map(join);

/** What breaks things: operators, quotes, expansions, globs, blanks, controls, continuations. */
const junkArbitrary = fc.oneof(
  fc.constantFrom(...'$()|&;<>{}[]*?~\\"\'#!= \t\n`a=:é\r\x01'.split(''), '$(', '${'),
  // A line continuation is valid almost anywhere, and bash drops it almost everywhere.
  fc.constant('\\\n'),
);
const fileArbitrary = fc
  .tuple(validFileArbitrary, fc.array(fc.tuple(fc.nat(), junkArbitrary), { maxLength: 3 }))
  .map(([file, junk]) => {
    let salted = file;
    for (const [position, piece] of junk) {
      const at = position % (salted.length + 1);
      salted = salted.slice(0, at) + piece + salted.slice(at);
    }
    return salted;
  });

/** Reads the file; only a DeclarationError may escape as a refusal. */
function readOrRefuse(text: string): Declaration | undefined {
  try {
    return readDeclaration(text, { file: FILE, env: FIXED_ENV });
  } catch (error) {
    if (error instanceof DeclarationError) return undefined;
    throw error;
  }
}

function splitOrRefuse(value: string): string[] | undefined {
  try {
    return splitWords(value, AT);
  } catch (error) {
    if (error instanceof DeclarationError) return undefined;
    throw error;
  }
}

describe('fuzz: refused, or exactly what bash assigns', () => {
  test(
    'readDeclaration',
    () => {
      requireBash();
      let compared = 0;
      const batchArbitrary = fc.array(fileArbitrary, { minLength: 1, maxLength: FILES_PER_BATCH });
      fc.assert(
        fc.property(batchArbitrary, fc.boolean(), (files, posix) => {
          const accepted = files.flatMap((text) => {
            const declaration = readOrRefuse(text);
            return declaration === undefined ? [] : [{ text, declaration }];
          });
          if (accepted.length === 0) return;
          const batch = runBash([...accepted.map(({ text }) => text), ''], [], { posix });
          const baseline = batch.sourcings.at(-1)!;
          for (const [index, { text, declaration }] of accepted.entries()) {
            const differences = describeDifferences(declaration, batch.sourcings[index]!, baseline, FIXED_ENV);
            if (differences.length > 0) {
              throw new Error(`${posix ? 'bash --posix' : 'bash'} ${JSON.stringify(text)}:\n${differences.join('\n')}`);
            }
          }
          compared += accepted.length;
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
      expect(compared).toBeGreaterThan(MINIMUM_COMPARED);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'splitWords',
    () => {
      requireBash();
      let compared = 0;
      const valueArbitrary = fc.oneof(nonEmptyWordArbitrary, fileArbitrary);
      fc.assert(
        fc.property(fc.array(valueArbitrary, { minLength: 1, maxLength: FILES_PER_BATCH * 2 }), (values) => {
          const accepted = values.flatMap((value) => {
            const words = splitOrRefuse(value);
            return words === undefined ? [] : [{ value, words }];
          });
          if (accepted.length === 0) return;
          const batch = runBash([], accepted.map(({ value }) => value), { posix: false });
          for (const [index, { value, words }] of accepted.entries()) {
            const bashWords = batch.splits[index];
            if (JSON.stringify(words) !== JSON.stringify(bashWords)) {
              const shown = `splitWords ${JSON.stringify(words)}, bash ${JSON.stringify(bashWords)}`;
              throw new Error(`words=( ${JSON.stringify(value)} ): ${shown}`);
            }
          }
          compared += accepted.length;
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
      expect(compared).toBeGreaterThan(MINIMUM_COMPARED);
    },
    TEST_TIMEOUT_MS,
  );
});
