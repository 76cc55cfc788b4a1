import { parse } from 'shell-quote';
import { describe, expect, test } from 'vitest';
import type { ShellValue } from '../../src/declaration/declaration.js';
import { DeclarationError, type SourceLocation } from '../../src/errors.js';
import { readDeclaration } from '../../src/declaration/reader.js';
import { splitWords } from '../../src/declaration/words.js';
import { FIXED_ENV, runBash } from '../helpers/bash.js';

const FILE = '/etc/conf.d/php-fpm';
const ENV: Readonly<Record<string, string | undefined>> = {
  HOME: '/root',
  PATH: '/usr/bin:/bin',
  BASE: '/etc/php',
  SPACED: ' a  b ',
  EMPTY: '',
  GONE: undefined,
};
const AT: SourceLocation = { file: FILE, line: 3, column: 12 };

type Values = Record<string, string | string[]>;

function read(source: Uint8Array | string, env = ENV): Values {
  const values: Values = {};
  for (const variable of readDeclaration(source, { file: FILE, env }).variables) {
    values[variable.name] = plain(variable.value);
  }
  return values;
}

function plain(value: ShellValue): string | string[] {
  return value.kind === 'string' ? value.value : value.elements;
}

function refusalOf(action: () => unknown): DeclarationError {
  try {
    action();
  } catch (error) {
    if (error instanceof DeclarationError) return error;
    throw error;
  }
  throw new Error('expected a DeclarationError, nothing was thrown');
}

/** Case → file → the variables it assigns (each row is also checked against bash below). */
const ACCEPTED: readonly [string, string, Values][] = [
    ['blank lines', '\n\nA=1\n\n \t\n', { A: '1' }],
    ['comment lines', '# c\n  # c\nA=1 # c\n', { A: '1' }],
    ['# inside a word is literal', 'A=a#b', { A: 'a#b' }],
    ['# right after = is literal', 'A=#x', { A: '#x' }],
    ['# after a blank starts a comment', 'A=x #y', { A: 'x' }],
    ['backslash ending a comment does not continue it', '# c \\\nA=1', { A: '1' }],
    ['plain word', 'A=word', { A: 'word' }],
    ['empty value', 'A=\nB=', { A: '', B: '' }],
    ['several assignments on one line', 'A=1 B=2', { A: '1', B: '2' }],
    ['assignments on one line apply in order', 'A=1 B=$A', { A: '1', B: '1' }],
    ['; separates statements', 'A=1; B=2;C=3;', { A: '1', B: '2', C: '3' }],
    ['export NAME=word', 'export A=1', { A: '1' }],
    ['export NAME alone changes nothing', 'export A\nexport HOME', {}],
    ['export NAME=word NAME', 'export A=1 B', { A: '1' }],
    ['export expands all arguments before assigning', 'A=0\nexport A=1 B=$A', { A: '1', B: '0' }],
    ['export NAME+=word', 'export BASE+=/8.2', { BASE: '/etc/php/8.2' }],
    ['export does not split', 'export A=$SPACED', { A: ' a  b ' }],
    ['array', 'A=(a b c)', { A: ['a', 'b', 'c'] }],
    [
      'array across lines with comments',
      'A=( "slot=php8.2" # note\n\n  # line\n "config=/a" )',
      { A: ['slot=php8.2', 'config=/a'] },
    ],
    ['comment in an array ends at the newline despite a backslash', 'A=(a #c \\\n b)', { A: ['a', 'b'] }],
    ['array append', 'A=(a)\nA+=(b c)', { A: ['a', 'b', 'c'] }],
    ['array append to a string', 'A=s\nA+=(x)', { A: ['s', 'x'] }],
    ['array append to an unset variable', 'A+=(x)', { A: ['x'] }],
    ['array replaces a string', 'A=s\nA=(x)', { A: ['x'] }],
    ['empty arrays', 'A=()\nB+=()\nC=(\n)', { A: [], B: [], C: [] }],
    ['assignment after an array on the same line', 'A=(a) B=2', { A: ['a'], B: '2' }],
    ['string append', 'A=a\nA+=b\nB+=c', { A: 'ab', B: 'c' }],
    ['single quotes keep everything', "A='a \\ \" $B `x` #'", { A: 'a \\ " $B `x` #' }],
    ['backslash in double quotes escapes only $ ` " \\ and newline', 'A="\\$\\`\\"\\\\\\a\\n"', { A: '$`"\\\\a\\n' }],
    ['backslash-newline in double quotes is removed', 'A="a\\\nb"', { A: 'ab' }],
    ['unquoted backslash escapes', 'A=\\a\\ b\\$c\\#', { A: 'a b$c#' }],
    ['continuation between words', 'A=1 \\\nB=2', { A: '1', B: '2' }],
    ['continuation mid-word', 'A=ab\\\ncd', { A: 'abcd' }],
    ['continuation mid-name', 'A\\\nB=1', { AB: '1' }],
    ['continuation inside ${}', 'B=x\nA=${\\\nB\\\n}', { B: 'x', A: 'x' }],
    ['continuation then # is mid-word', 'A=1\\\n#x', { A: '1#x' }],
    ['continuation at the end of the file', 'A=x\\\n', { A: 'x' }],
    ['quotes spanning lines', "A='a\nb' B=\"c\nd\"", { A: 'a\nb', B: 'c\nd' }],
    ['glued parts', "B=b\nA=a'b'\"c\"\\d$B${B}e", { B: 'b', A: 'abcdbbe' }],
    ['$NAME and ${NAME} of the file', 'B=x\nA=$B${B}"$B"', { B: 'x', A: 'xxx' }],
    ['$NAME of the environment', 'A=$BASE/conf.d', { A: '/etc/php/conf.d' }],
    ['unset variable is empty', 'A=x$NOPE$GONE', { A: 'x' }],
    ['name ends at the first non-name character', 'B=1\nA=$B-$B.$B/', { B: '1', A: '1-1.1/' }],
    ['no splitting in a string assignment', 'A=$SPACED', { A: ' a  b ' }],
    ['no pathname expansion in a string assignment', "S='*'\nA=$S B=*.conf", { S: '*', A: '*', B: '*.conf' }],
    ['no brace expansion in a string assignment', 'A={a,b}', { A: '{a,b}' }],
    [
      'splitting of unquoted expansions in arrays',
      'A=($SPACED x$SPACED"y" "$SPACED")',
      { A: ['a', 'b', 'x', 'a', 'b', 'y', ' a  b '] },
    ],
    ['a word expanding to nothing disappears', 'A=($EMPTY x$EMPTY $NOPE)', { A: ['x'] }],
    ['a quoted empty part keeps an empty word', 'A=("" "$EMPTY" $EMPTY"")', { A: ['', '', ''] }],
    ['quoted null next to splitting', "Y='x '\nA=(\"\"$Y\"\")", { Y: 'x ', A: ['x', ''] }],
    ['reassignment replaces', 'A=1\nA=2', { A: '2' }],
    ['literal $ where no expansion can start', 'A=a$ B="$" C=$/ D="$\'" E=$', { A: 'a$', B: '$', C: '$/', D: "$'", E: '$' }],
    ['assignment to a variable of the environment', 'PATH=$PATH:/opt', { PATH: '/usr/bin:/bin:/opt' }],
    ['keywords and punctuation as values', 'A=(if ! a=b x+=y ^ %)', { A: ['if', '!', 'a=b', 'x+=y', '^', '%'] }],
    ['non-ASCII text', 'A=é B=("日本" ü)', { A: 'é', B: ['日本', 'ü'] }],
    ['a variable named export', 'export=1', { export: '1' }],
];

describe('readDeclaration accepts with bash meaning', () => {
  test.each(ACCEPTED)('%s', (_case, source, expected) => {
    expect(read(source)).toEqual(expected);
  });

  test('bash assigns the same values for every case above', () => {
    const env = Object.fromEntries(Object.entries(ENV).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const batch = runBash(ACCEPTED.map(([, source]) => source), [], { posix: false, env });
    for (const [index, [name, , expected]] of ACCEPTED.entries()) {
      const sourcing = batch.sourcings[index]!;
      expect(sourcing.stderr, name).toBe('');
      for (const [variable, value] of Object.entries(expected)) {
        expect(sourcing.after.get(variable), `${name}: ${variable}`).toEqual(
          typeof value === 'string' ? { kind: 'string', value } : { kind: 'array', elements: value },
        );
      }
    }
  });

  test('variables come in the order of their first assignment, with its position', () => {
    const declaration = readDeclaration('B=1\n  A=(x)\nB=2 C=3\nexport D\nD=4\n', { file: FILE, env: ENV });
    expect(declaration.file).toBe(FILE);
    expect(declaration.variables).toEqual([
      { name: 'B', value: { kind: 'string', value: '2' }, line: 1, column: 1 },
      { name: 'A', value: { kind: 'array', elements: ['x'] }, line: 2, column: 3 },
      { name: 'C', value: { kind: 'string', value: '3' }, line: 3, column: 5 },
      { name: 'D', value: { kind: 'string', value: '4' }, line: 5, column: 1 },
    ]);
  });

  test('bytes and text give the same declaration', () => {
    const source = 'A="é"\nB=(x y)\n';
    expect(readDeclaration(new TextEncoder().encode(source), { file: FILE, env: ENV })).toEqual(
      readDeclaration(source, { file: FILE, env: ENV }),
    );
  });

  test('HOME, PATH, SHELL and TERM from the environment are read', () => {
    expect(read('A=$HOME:$SHELL:$TERM', { SHELL: '/bin/sh', TERM: 'xterm', HOME: '/h' })).toEqual({ A: '/h:/bin/sh:xterm' });
  });
});

describe('readDeclaration refuses with file:line:column, what was found and the fix', () => {
  test.each<[string, string, number, number, string]>([
    ['command substitution', 'A=1\nFPM_slot_1=( "config=$(touch x)" )', 2, 22, 'command substitution "$(" found'],
    ['command substitution in double quotes', 'A="$(x)"', 1, 4, 'command substitution "$(" found'],
    ['backtick', 'A=`x`', 1, 3, 'command substitution "`" found'],
    ['backtick in double quotes', 'A="`x`"', 1, 4, 'command substitution "`" found'],
    ['arithmetic expansion', 'A=$((1+1))', 1, 3, 'arithmetic expansion "$((" found'],
    ['old arithmetic expansion', 'A=$[1+1]', 1, 3, 'arithmetic expansion "$[" found'],
    ['process substitution <(', 'A=(<(x))', 1, 4, 'process substitution "<(" found'],
    ['process substitution >(', 'A=(>(x))', 1, 4, 'process substitution ">(" found'],
    ['command', 'touch x', 1, 1, 'command "touch" found'],
    ['command after an assignment', 'A=1 cmd', 1, 5, 'command "cmd" found'],
    ['command after an array', 'A=(a) cmd', 1, 7, 'command "cmd" found'],
    ['export after an assignment', 'A=1 export B=2', 1, 5, 'command "export" found'],
    ['function definition', 'f() { :; }', 1, 1, 'function definition "f" found'],
    ['function keyword', 'function f { :; }', 1, 1, 'keyword "function" found'],
    ['eval', "eval 'A=1'", 1, 1, 'command "eval" found'],
    ['source', 'source x', 1, 1, 'command "source" found'],
    ['dot', '. x', 1, 1, 'command "." found'],
    ['if', 'if true; then A=1; fi', 1, 1, 'keyword "if" found'],
    ['for', 'for i in 1; do :; done', 1, 1, 'keyword "for" found'],
    ['while', 'while :; do :; done', 1, 1, 'keyword "while" found'],
    ['case', 'case x in x) ;; esac', 1, 1, 'keyword "case" found'],
    ['group', '{ A=1; }', 1, 1, 'keyword "{" found'],
    ['[[', '[[ x ]]', 1, 1, 'keyword "[[" found'],
    ['((', '(( 1 ))', 1, 1, 'arithmetic command "((" found'],
    ['subshell', '(A=1)', 1, 1, 'parenthesis "(" found'],
    ['declare', 'declare A=1', 1, 1, '"declare" found'],
    ['typeset', 'typeset A=1', 1, 1, '"typeset" found'],
    ['local', 'local A=1', 1, 1, '"local" found'],
    ['readonly', 'readonly A=1', 1, 1, '"readonly" found'],
    ['redirection >', 'A=1 >x', 1, 5, 'redirection ">" found'],
    ['redirection >>', 'A=1 >>x', 1, 5, 'redirection ">>" found'],
    ['redirection <', 'A=1 <x', 1, 5, 'redirection "<" found'],
    ['redirection with a descriptor', 'A=1 2>x', 1, 5, 'redirection "2>" found'],
    ['redirection glued to a value', 'A=1>x', 1, 4, 'redirection ">" found'],
    ['here-document', 'A=1 <<EOF\nx\nEOF', 1, 5, 'here-document "<<" found'],
    ['pipe', 'A=1 | x', 1, 5, 'pipe "|" found'],
    ['background', 'A=1 &', 1, 5, 'background operator "&" found'],
    ['and-list', 'A=1 && x', 1, 5, 'and-list "&&" found'],
    ['or-list', 'A=1 || x', 1, 5, 'or-list "||" found'],
    [';;', 'A=1;;', 1, 4, 'case terminator ";;" found'],
    ['; without a statement', 'A=1; ;', 1, 6, 'separator ";" found'],
    ['; at the start of a line', 'A=1\n;B=2', 2, 1, 'separator ";" found'],
    ['unterminated single quote', "A=1\nB='x\n", 2, 3, 'unterminated single quote found'],
    ['unterminated double quote', 'A="x', 1, 3, 'unterminated double quote found'],
    ['unterminated array', 'A=(a\nb', 1, 3, 'unterminated array "(" found'],
    ['unterminated ${', 'A=${B', 1, 3, 'unterminated "${" found'],
    ['name starting with a digit', '1A=x', 1, 1, 'invalid variable name "1A" found'],
    ['name with a dash', 'A-B=x', 1, 1, 'invalid variable name "A-B" found'],
    ['name with a dot, after an assignment', 'A=1 B.C=x', 1, 5, 'invalid variable name "B.C" found'],
    ['quoted name', '"A"=1', 1, 1, 'command "\\"A\\"=1" found'],
    ['DOS line endings', 'A=1\r\nB=2\r\n', 1, 4, 'DOS line endings (CR LF) found. Convert the file with dos2unix'],
    ['lone carriage return', 'A=1\rB=2', 1, 4, 'carriage return (CR) found'],
    ['CR inside a comment', '# c\r\n', 1, 4, 'DOS line endings (CR LF) found'],
    ['NUL', 'A=\0', 1, 3, 'NUL byte found'],
    ['other control character', 'A=\x01', 1, 3, 'control character U+0001 found'],
    ['byte order mark', '\uFEFFA=1', 1, 1, 'byte order mark (U+FEFF) found'],
    ['unpaired surrogate', 'A=\uD800', 1, 3, 'unpaired surrogate U+D800 found'],
    ["$'…'", "A=$'x'", 1, 3, `ANSI-C quoting "$'" found`],
    ['$"…"', 'A=$"x"', 1, 3, 'locale translation "$\\"" found'],
    ['${X:-…}', 'A=${X:-y}', 1, 3, 'parameter expansion "${X:" found'],
    ['${#X}', 'A=${#X}', 1, 3, 'special parameter or expansion "${#" found'],
    ['${!X}', 'A=${!X}', 1, 3, 'special parameter or expansion "${!" found'],
    ['${X[0]}', 'A=${X[0]}', 1, 3, 'parameter expansion "${X[" found'],
    ['${ X}', 'A=${ X}', 1, 3, 'parameter expansion "${ " found'],
    ['${1}', 'A=${1}', 1, 3, 'positional parameter "${1" found'],
    ['subscript assignment', 'A[1]=x', 1, 2, 'array subscript "A[" found'],
    ['subscript in an array', 'A=([1]=x)', 1, 4, 'unquoted glob character "[" found'],
    ['$1', 'A=$1', 1, 3, 'positional parameter "$1" found'],
    ['$@', 'A=$@', 1, 3, 'special parameter "$@" found'],
    ['$*', 'A="$*"', 1, 4, 'special parameter "$*" found'],
    ['$#', 'A=$#', 1, 3, 'special parameter "$#" found'],
    ['$?', 'A=$?', 1, 3, 'special parameter "$?" found'],
    ['$$', 'A=$$', 1, 3, 'special parameter "$$" found'],
    ['$!', 'A=$!', 1, 3, 'special parameter "$!" found'],
    ['$-', 'A=$-', 1, 3, 'special parameter "$-" found'],
    ['$0', 'A=$0', 1, 3, 'positional parameter "$0" found'],
    ['$_', 'A=$_', 1, 3, 'variable "$_" managed by bash found'],
    ['unquoted ~', 'A=~', 1, 3, 'unquoted tilde "~" found'],
    ['unquoted ~ after :', 'A=/x:~/bin', 1, 6, 'unquoted tilde "~" found'],
    ['unquoted ~ in an array', 'A=(~)', 1, 4, 'unquoted tilde "~" found'],
    ['* in an array', 'A=(*.conf)', 1, 4, 'unquoted glob character "*" found'],
    ['? in an array', 'A=(a?)', 1, 5, 'unquoted glob character "?" found'],
    ['glob from an unquoted expansion in an array', "G='a*'\nA=(x $G)", 2, 6, 'unquoted "$G" in an array holding "*" found'],
    ['backslash from an expansion in an array', "G='a\\b'\nA=($G)", 2, 4, 'unquoted "$G" in an array holding "\\\\" found'],
    ['parenthesis from an expansion in an array', "G='@(x)'\nA=($G)", 2, 4, 'unquoted "$G" in an array holding "(" found'],
    ['unquoted $ starting no expansion in an array', 'A=($SPACED$/)', 1, 11, 'unquoted "$" in an array element found'],
    ['brace expansion in an array', 'A=({a,b})', 1, 4, 'unquoted brace "{" found'],
    ['closing brace in an array', 'A=(a})', 1, 5, 'unquoted brace "}" found'],
    ['brace expansion in export', 'export A=x{a,b}', 1, 11, 'unquoted brace "{" found'],
    ['( inside an array', 'A=(a (b))', 1, 6, 'parenthesis "(" found'],
    ['( in a value', 'A=a(b)', 1, 4, 'parenthesis "(" found'],
    [') in a value', 'A=a)', 1, 4, 'parenthesis ")" found'],
    ['array not right after =', 'A= (x)', 1, 4, 'parenthesis "(" found'],
    ['; inside an array', 'A=(a;b)', 1, 5, 'separator ";" found'],
    ['assignment to IFS', 'IFS=:', 1, 1, 'variable "IFS" managed by bash found'],
    ['assignment to PWD', 'PWD=/', 1, 1, 'variable "PWD" managed by bash found'],
    ['assignment to BASH_ENV', 'BASH_ENV=x', 1, 1, 'variable "BASH_ENV" managed by bash found'],
    ['assignment to POSIXLY_CORRECT', 'POSIXLY_CORRECT=1', 1, 1, 'variable "POSIXLY_CORRECT" managed by bash found'],
    ['read of RANDOM', 'A=$RANDOM', 1, 3, 'variable "$RANDOM" managed by bash found'],
    ['read of HOSTNAME', 'A=${HOSTNAME}', 1, 3, 'variable "$HOSTNAME" managed by bash found'],
    ['export of SHLVL', 'export SHLVL', 1, 8, 'variable "SHLVL" managed by bash found'],
    ['read of SHELL absent from the environment', 'A=$SHELL', 1, 3, '"$SHELL" found while SHELL is not in the environment'],
    ['read of TERM absent from the environment', 'A="$TERM"', 1, 4, '"$TERM" found while TERM is not in the environment'],
    ['reference to an array', 'A=(a b)\nB=$A', 2, 3, '"$A" naming an array found'],
    ['reference to an array in an array', 'A=(a b)\nB=(${A})', 2, 4, '"$A" naming an array found'],
    ['string assigned to an array', 'A=(a b)\nA=x', 2, 1, 'string assigned to the array "A" found'],
    ['string appended to an array', 'A=(a b)\nA+=x', 2, 1, 'string assigned to the array "A" found'],
    ['export of a string into an array', 'A=(a b)\nexport A=x', 2, 8, 'string assigned to the array "A" found'],
    ['export of an array', 'export A=(a)', 1, 8, 'exported array "A" found'],
    ['export option', 'export -n A', 1, 8, 'export option "-n" found'],
    ['export without a name', 'export', 1, 1, '"export" without a name found'],
    ['export of an invalid name', 'export 1A=x', 1, 8, 'invalid variable name "1A" found'],
    ['export of a quoted argument', 'export "A=1"', 1, 8, 'export argument "\\"A=1\\"" found'],
    ['backslash at the end of the file', 'A=x\\', 1, 4, 'backslash at the end of the file found'],
    ['text glued after an array', 'A=(a)b', 1, 6, '"b" right after the ")" closing an array found'],
    ['comment glued after an array', 'A=(a)#c', 1, 6, '"#" right after the ")" closing an array found'],
    ['column counts code points', 'A="日本" B=$(x)', 1, 10, 'command substitution "$(" found'],
  ])('%s', (_case, source, line, column, fragment) => {
    const refusal = refusalOf(() => readDeclaration(source, { file: FILE, env: ENV }));
    expect(refusal.location).toEqual({ file: FILE, line, column });
    expect(refusal.message.startsWith(`${FILE}:${line}:${column}: `)).toBe(true);
    expect(refusal.message).toContain(fragment);
  });

  test.each<[string, number, string]>([
    ['A=$HOME', 3, '"$HOME" found while HOME is not in the environment'],
    ['A=x${PATH}', 4, '"$PATH" found while PATH is not in the environment'],
    ['export PATH+=:/opt', 8, '"PATH+=" found while PATH is not in the environment'],
    ['TERM+=(x)', 1, '"TERM+=" found while TERM is not in the environment'],
  ])('%j is refused when the environment lacks the variable: bash may set it', (source, column, found) => {
    const refusal = refusalOf(() => readDeclaration(source, { file: FILE, env: { PATH: undefined } }));
    expect(refusal.location).toEqual({ file: FILE, line: 1, column });
    expect(refusal.found).toBe(found);
  });

  test('assigning HOME, PATH, SHELL or TERM without appending needs no environment', () => {
    expect(read('PATH=/bin HOME=/root SHELL=/bin/sh TERM=dumb\nA=$PATH', {})).toEqual({
      PATH: '/bin', HOME: '/root', SHELL: '/bin/sh', TERM: 'dumb', A: '/bin',
    });
  });

  test('invalid UTF-8 is refused at the offending byte', () => {
    const bytes = Uint8Array.from([...new TextEncoder().encode('A=1\nB="é'), 0xc3, 0x28, 0x22]);
    const refusal = refusalOf(() => readDeclaration(bytes, { file: FILE, env: ENV }));
    expect(refusal.location).toEqual({ file: FILE, line: 2, column: 5 });
    expect(refusal.found).toBe('invalid UTF-8 byte 0xc3 found');
  });

  test.each<[string, number[]]>([
    ['overlong encoding', [0xc0, 0xaf]],
    ['encoded surrogate', [0xed, 0xa0, 0x80]],
    ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['truncated sequence', [0xe2, 0x82]],
    ['lone continuation byte', [0x80]],
  ])('invalid UTF-8: %s', (_case, bytes) => {
    const refusal = refusalOf(() => readDeclaration(Uint8Array.from([0x41, 0x3d, ...bytes]), { file: FILE, env: ENV }));
    expect(refusal.location).toEqual({ file: FILE, line: 1, column: 3 });
  });

  test('a byte order mark in the bytes is refused, not skipped', () => {
    const refusal = refusalOf(() => readDeclaration(Uint8Array.from([0xef, 0xbb, 0xbf, 0x41, 0x3d, 0x31]), { file: FILE, env: ENV }));
    expect(refusal.location).toEqual({ file: FILE, line: 1, column: 1 });
    expect(refusal.found).toBe('byte order mark (U+FEFF) found');
  });

  test('a refusal carries exit code 6, what was found and the fix', () => {
    const refusal = refusalOf(() => readDeclaration('A=ok\nFPM_slot_1=$(touch x)\n', { file: FILE, env: ENV }));
    expect(refusal.exitCode).toBe(6);
    expect(refusal.found).toBe('command substitution "$(" found');
    expect(refusal.fix).toBe('The file is read, never executed: write the literal value instead');
    expect(refusal.message).toBe(
      `${FILE}:2:12: command substitution "$(" found. The file is read, never executed: write the literal value instead`,
    );
  });
});

describe('splitWords', () => {
  test.each<[string, string[]]>([
    ["slot=php8.2 config='/a b.conf'", ['slot=php8.2', 'config=/a b.conf']],
    ['  a \t b\n c  ', ['a', 'b', 'c']],
    ['', []],
    ['a\\ b "c d" \'e f\'', ['a b', 'c d', 'e f']],
    ['"" \'\'', ['', '']],
    ['"a\\"b" "\\a"', ['a"b', '\\a']],
    ['x"y"\'z\'', ['xyz']],
    ['a#b', ['a#b']],
    ['a\\\nb', ['ab']],
    ['! ^ % a=b', ['!', '^', '%', 'a=b']],
    ["'$HOME' '*' '~'", ['$HOME', '*', '~']],
  ])('%j', (value, words) => {
    expect(splitWords(value, AT)).toEqual(words);
  });

  test.each<[string, string]>([
    ['slot=$x', '"$" found at character 6'],
    ['"$x"', '"$" found at character 2'],
    ['`x`', 'command substitution "`" found at character 1'],
    ['a*', 'unquoted glob character "*" found at character 2'],
    ['[a]', 'unquoted glob character "[" found at character 1'],
    ['{a,b}', 'unquoted brace "{" found at character 1'],
    ['~/x', 'unquoted tilde "~" found at character 1'],
    ['a;b', 'separator ";" found at character 2'],
    ['a | b', 'pipe "|" found at character 3'],
    ['a)', 'parenthesis ")" found at character 2'],
    ["a 'b", 'unterminated single quote found at character 3'],
    ['"b', 'unterminated double quote found at character 1'],
    ['a #b', '"#" starting a word found at character 3'],
    ['a\\', 'backslash at the end of the value found at character 2'],
    ['a\rb', 'carriage return (CR) found at character 2'],
  ])('refuses %j', (value, fragment) => {
    const refusal = refusalOf(() => splitWords(value, AT));
    expect(refusal.location).toEqual(AT);
    expect(refusal.message.startsWith(`${FILE}:3:12: `)).toBe(true);
    expect(refusal.message).toContain(fragment);
  });
});

// shell-quote's parse() only suits display; these are the three ways it disagrees with bash.
describe('where shell-quote parse() disagrees with bash, the reader agrees with bash', () => {
  const comment = 'FPM_slot_1=( "slot=php8.2" # note\n "config=/a" )\n';
  const hashInWord = 'FPM_slot_1=( slot=a#b )\n';
  const unterminated = 'FPM_slot_1=( "slot=a config=/a b )\n';

  test('a comment ends at the end of its line', () => {
    expect(parse('"slot=php8.2" # note\n "config=/a"')).toEqual(['slot=php8.2', { comment: ' note\n "config=/a"' }]);
    const bash = runBash([comment], [], { posix: false }).sourcings[0]!.after.get('FPM_slot_1');
    expect(bash).toEqual({ kind: 'array', elements: ['slot=php8.2', 'config=/a'] });
    expect(readDeclaration(comment, { file: FILE, env: FIXED_ENV }).variables[0]!.value).toEqual(bash);
  });

  test('# inside a word is literal', () => {
    expect(parse('slot=a#b')).toEqual(['slot=a', { comment: 'b' }]);
    const bash = runBash([hashInWord], ['slot=a#b'], { posix: false });
    expect(bash.sourcings[0]!.after.get('FPM_slot_1')).toEqual({ kind: 'array', elements: ['slot=a#b'] });
    const read = readDeclaration(hashInWord, { file: FILE, env: FIXED_ENV }).variables[0]!.value;
    expect(read).toEqual({ kind: 'array', elements: ['slot=a#b'] });
    expect(bash.splits[0]).toEqual(['slot=a#b']);
    expect(splitWords('slot=a#b', AT)).toEqual(['slot=a#b']);
  });

  test('an unterminated quote is an error, not silently closed', () => {
    expect(parse('"slot=a config=/a b')).toEqual(['slot=a', 'config=/a', 'b']);
    // Harmless text: bash only reports the missing quote.
    const bash = runBash([unterminated], [], { posix: false }).sourcings[0]!;
    expect(bash.status).not.toBe(0);
    expect(bash.stderr).toContain('unexpected EOF');
    const refusal = refusalOf(() => readDeclaration(unterminated, { file: FILE, env: FIXED_ENV }));
    expect(refusal.found).toBe('unterminated double quote found');
    expect(refusalOf(() => splitWords('"slot=a config=/a b', AT)).found).toContain('unterminated double quote found');
  });
});
