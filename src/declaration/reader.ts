// Reads the declaration file the way `source` in bash would assign its variables, without
// executing anything: what cannot be read with bash's exact meaning is refused, never guessed.

import type { Declaration, ShellValue, Variable } from './declaration.js';
import { DeclarationError, type SourceLocation } from '../errors.js';
import { Lexer, quote, type Word, type WordRules } from './lexer.js';
import { decodeSource, findUnreadableCharacter, type SourceText } from './source.js';

export interface ReadOptions {
  /** Named in every message. */
  file: string;
  /** The environment bash would start with; `undefined` means unset. */
  env: Readonly<Record<string, string | undefined>>;
}

/** `A=value`: bash splits nothing and expands no pattern. */
const STRING_RULES: WordRules = {
  refuseGlobs: false,
  refuseBraces: false,
  refuseTilde: true,
  expand: true,
  refuseLoneDollar: false,
};
/** `export A=value`: like an assignment, except that bash applies brace expansion. */
const EXPORT_RULES: WordRules = { ...STRING_RULES, refuseBraces: true };
/** Elements of `A=( … )`: bash applies brace, tilde and pathname expansion and word splitting. */
const ELEMENT_RULES: WordRules = { ...STRING_RULES, refuseGlobs: true, refuseBraces: true, refuseLoneDollar: true };
/** A value split into words, never expanded. */
const SPLIT_RULES: WordRules = { ...ELEMENT_RULES, expand: false };
/** A word refused anyway, read only to name it in the message. */
const COMMAND_RULES: WordRules = { ...STRING_RULES, refuseTilde: false };

/**
 * The longest value (a string, or one array element) the reader holds, in characters. No sane
 * declaration comes near it; variables expanding each other double at every step (27 of them in
 * 1.2 KB would make 128 M characters), so a limit is what keeps memory bounded.
 */
export const MAX_VALUE_CHARS = 64 * 1024;
/**
 * All the text that `$NAME` expansions of one file produce together, in characters: as much as
 * the file itself may hold (1 MiB), so that expansions at most double what the file can make the
 * controller build (values split into words in arrays cost far more memory than their text).
 */
export const MAX_EXPANDED_TOTAL_CHARS = 1024 * 1024;
const LONG_VALUE_FIX =
  `No declaration needs values this long (${MAX_VALUE_CHARS} characters; variables that expand each other double at every step): write the value without repeated expansions`;

/** Default IFS: only these split the result of an unquoted expansion. */
const IFS_WHITESPACE: ReadonlySet<string> = new Set([' ', '\t', '\n']);
/**
 * In the result of an unquoted expansion inside an array, bash would match `* ? [` against file
 * names; bash 5.0 also a word holding a backslash, and a shell with extglob on `@(…)`, `!(…)`.
 */
const EXPANDED_GLOB_CHARACTERS: ReadonlySet<string> = new Set(['*', '?', '[', '\\', '(']);

/** Variables bash sets or changes by itself, or whose value changes how bash reads what follows. */
const BASH_MANAGED_NAMES: ReadonlySet<string> = new Set([
  '_', 'IFS', 'PWD', 'OLDPWD', 'SHLVL', 'RANDOM', 'SRANDOM', 'SECONDS', 'LINENO', 'EUID', 'UID', 'PPID',
  'HOSTNAME', 'HOSTTYPE', 'OSTYPE', 'MACHTYPE', 'SHELLOPTS', 'PIPESTATUS', 'FUNCNAME', 'GROUPS', 'DIRSTACK',
  'EPOCHSECONDS', 'EPOCHREALTIME', 'HISTCMD', 'OPTIND', 'OPTARG', 'OPTERR', 'PS0', 'PS1', 'PS2', 'PS3', 'PS4',
  'COLUMNS', 'LINES', 'COMPREPLY', 'POSIXLY_CORRECT', 'GLOBIGNORE', 'GLOBSORT', 'HISTFILE', 'HISTSIZE',
  'HISTFILESIZE', 'MAILCHECK',
]);
/** BASH, BASHOPTS, BASHPID, BASH_VERSION, BASH_COMPAT, …; COMP_WORDBREAKS, …; READLINE_LINE, … */
const BASH_MANAGED_PREFIXES: readonly string[] = ['BASH', 'COMP_', 'READLINE_'];
/** Bash gives these a value of its own when the environment lacks them. */
const BASH_DEFAULTED_NAMES: ReadonlySet<string> = new Set(['HOME', 'PATH', 'SHELL', 'TERM']);

const RESERVED_WORDS: ReadonlySet<string> = new Set([
  'if', 'then', 'else', 'elif', 'fi', 'case', 'esac', 'for', 'select', 'while', 'until', 'do', 'done', 'in',
  'function', 'time', 'coproc', '{', '}', '!', '[[', ']]',
]);
const DECLARATION_BUILTINS: ReadonlySet<string> = new Set(['declare', 'typeset', 'local', 'readonly']);
const SUBSCRIPTED_NAME = /^[A-Za-z_][A-Za-z0-9_]*\[/;
/** The unquoted text before `=` or `+=` of a word that looks like an assignment. */
const ASSIGNED_NAME = /^([^'"\\$`]+?)\+?=/;
const DIGITS = /^[0-9]+$/;

const ONLY_ASSIGNMENTS =
  'The file is read, never executed: only NAME=value, NAME=( … ) and export NAME=value are read';
const OPERATOR_FIX = `${ONLY_ASSIGNMENTS}; quote the character if it belongs to a value`;
const EXPORT_FIX = 'Write export NAME or export NAME=value, with an unquoted name of letters, digits and _';
const NAME_FIX = 'A name has letters, digits and _ and does not start with a digit: rename the variable';
const DEFAULTED_FIX = 'Bash may give it a value of its own: write the value literally';

function isBashManaged(name: string): boolean {
  return BASH_MANAGED_NAMES.has(name) || BASH_MANAGED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** Reads the variables that `source file` in bash would assign, or refuses the whole file. */
export function readDeclaration(source: Uint8Array | string, options: ReadOptions): Declaration {
  const reader = new Reader(decodeSource(source, options.file), options);
  reader.readStatements();
  return { file: options.file, variables: reader.assignedVariables() };
}

/**
 * Splits a value into words with bash's quoting rules, as `eval "words=( $value )"` would
 * without expanding anything. Refusals point at `at` and name the character within the value.
 */
export function splitWords(value: string, at: SourceLocation): string[] {
  const chars = Array.from(value);
  const refuse = (index: number, found: string, fix: string): never => {
    throw new DeclarationError(at, `${found} at character ${index + 1} of ${quote(value)}`, fix);
  };
  const unreadable = findUnreadableCharacter(chars);
  if (unreadable !== undefined) refuse(unreadable.index, unreadable.found, unreadable.fix);
  const lexer = new Lexer(chars, refuse, 'value');
  const words: string[] = [];
  for (lexer.skipBlanksAndNewlines(); lexer.peek() !== undefined; lexer.skipBlanksAndNewlines()) {
    if (lexer.peek() === '#') {
      refuse(lexer.index, '"#" starting a word found', 'Bash would read a comment up to the end of the line: quote it');
    }
    if (lexer.isOperator(lexer.peek())) lexer.refuseOperator('Quote it');
    // SPLIT_RULES refuse every `$`, so a word is text parts only.
    const { parts } = lexer.readWord(SPLIT_RULES);
    words.push(parts.flatMap((part) => (part.kind === 'text' ? [part.text] : [])).join(''));
  }
  return words;
}

interface PendingExport {
  name: string;
  index: number;
  append: boolean;
  word: Word;
}

class Reader {
  private readonly lexer: Lexer;
  /** Current values: the environment overlaid with what the file assigned so far. */
  private readonly values = new Map<string, ShellValue>();
  /** Position of each variable's first assignment, in assignment order. */
  private readonly firstAssignments = new Map<string, number>();
  /** Characters produced by expansions so far, against MAX_EXPANDED_TOTAL_CHARS. */
  private expandedChars = 0;

  constructor(
    private readonly source: SourceText,
    options: ReadOptions,
  ) {
    for (const [name, value] of Object.entries(options.env)) {
      if (value !== undefined) this.values.set(name, { kind: 'string', value });
    }
    const refuse = (index: number, found: string, fix: string): never => {
      throw new DeclarationError(source.locate(index), found, fix);
    };
    this.lexer = new Lexer(source.chars, refuse, 'file');
  }

  assignedVariables(): Variable[] {
    return Array.from(this.firstAssignments, ([name, index]): Variable => {
      const { line, column } = this.source.locate(index);
      return { name, value: this.values.get(name)!, line, column };
    });
  }

  readStatements(): void {
    const lexer = this.lexer;
    // `;` may only end a statement: bash refuses `;` at the start of a line and `A=1; ;`.
    let statementOpen = false;
    for (;;) {
      lexer.skipBlanks();
      const char = lexer.peek();
      if (char === undefined) return;
      if (char === '\n') {
        lexer.index++;
        statementOpen = false;
      } else if (char === '#') {
        lexer.skipComment();
      } else if (char === ';') {
        if (lexer.lookingAt(';;') || !statementOpen) {
          lexer.refuseOperator('End a statement with one ";" or a newline, after an assignment');
        }
        lexer.index++;
        statementOpen = false;
      } else {
        this.readStatement();
        statementOpen = true;
      }
    }
  }

  /** Reads assignments or an export up to the end of the statement. */
  private readStatement(): void {
    const lexer = this.lexer;
    const start = lexer.position();
    if (lexer.consume('export') && lexer.atWordEnd()) {
      this.readExport(start);
      return;
    }
    lexer.index = start;
    do {
      if (!this.atAssignment()) this.refuseCommand();
      this.readAssignment();
      lexer.skipBlanks();
    } while (!this.atStatementEnd());
  }

  /** Whether the next word starts with `NAME=` or `NAME+=` (bash decides on the unquoted text). */
  private atAssignment(): boolean {
    const lexer = this.lexer;
    const start = lexer.index;
    const found = lexer.readName() !== '' && (lexer.lookingAt('=') || lexer.lookingAt('+='));
    lexer.index = start;
    return found;
  }

  /** Whether the statement ends here; an operator other than `;` is refused. */
  private atStatementEnd(): boolean {
    const char = this.lexer.peek();
    if (char === undefined || char === '\n' || char === ';' || char === '#') return true;
    if (this.lexer.isOperator(char)) this.lexer.refuseOperator(OPERATOR_FIX);
    return false;
  }

  private readAssignment(): void {
    const lexer = this.lexer;
    const index = lexer.position();
    const name = lexer.readName();
    const append = lexer.consume('+=');
    if (!append) lexer.consume('=');
    this.refuseBashManaged(name, index);
    if (lexer.peek() === '(') {
      this.assignArray(name, index, append, this.readArray());
    } else {
      this.assignString(name, index, append, this.expandString(lexer.readWord(STRING_RULES)));
    }
  }

  /** Reads `( … )` and returns its elements, expanded and split as bash does. */
  private readArray(): string[] {
    const lexer = this.lexer;
    const open = lexer.index;
    lexer.index++;
    const elements: string[] = [];
    for (;;) {
      lexer.skipBlanksAndNewlines();
      const char = lexer.peek();
      if (char === undefined) this.lexer.refuse(open, 'unterminated array "(" found', 'Close the array with ")"');
      if (char === ')') break;
      if (char === '#') {
        lexer.skipComment();
      } else if (lexer.isOperator(char)) {
        lexer.refuseOperator('Quote it if it belongs to an element');
      } else {
        const word = lexer.readWord(ELEMENT_RULES);
        for (const field of this.expandFields(word)) {
          this.refuseLongValue(field.length, word.index, 'array element');
          elements.push(field);
        }
      }
    }
    lexer.index++;
    const after = lexer.peek();
    if (after !== undefined && after !== '\n' && after !== ';' && !lexer.isBlank(after)) {
      // Bash would not assign an array here: it reads `A=(a)b` as the string "(a)b".
      lexer.refuse(
        lexer.index,
        `${quote(after)} right after the ")" closing an array found`,
        'Put a blank, a newline or ";" after ")"',
      );
    }
    return elements;
  }

  /** Reads `export NAME`, `export NAME=value`, `export NAME+=value`, several per statement. */
  private readExport(exportIndex: number): void {
    const lexer = this.lexer;
    const pending: PendingExport[] = [];
    let argumentCount = 0;
    for (lexer.skipBlanks(); !this.atStatementEnd(); lexer.skipBlanks()) {
      argumentCount++;
      const index = lexer.position();
      const name = lexer.readName();
      if (name === '' || !(lexer.atWordEnd() || lexer.lookingAt('=') || lexer.lookingAt('+='))) {
        this.refuseExportArgument(index);
      }
      this.refuseBashManaged(name, index);
      if (lexer.atWordEnd()) continue;
      const append = lexer.consume('+=');
      if (!append) lexer.consume('=');
      if (lexer.peek() === '(') {
        const fix = 'Bash cannot export arrays: assign it without export';
        lexer.refuse(index, `exported array ${quote(name)} found`, fix);
      }
      pending.push({ name, index, append, word: lexer.readWord(EXPORT_RULES) });
    }
    if (argumentCount === 0) lexer.refuse(exportIndex, '"export" without a name found', EXPORT_FIX);
    // Bash expands every argument of export before it assigns the first one.
    const values = pending.map((assignment) => this.expandString(assignment.word));
    pending.forEach((assignment, position) => {
      this.assignString(assignment.name, assignment.index, assignment.append, values[position]!);
    });
  }

  private refuseExportArgument(index: number): never {
    const lexer = this.lexer;
    lexer.index = index;
    const text = lexer.text(index, lexer.readWord(COMMAND_RULES).end);
    if (text.startsWith('-')) lexer.refuse(index, `export option ${quote(text)} found`, EXPORT_FIX);
    this.refuseInvalidName(index, text);
    return lexer.refuse(index, `export argument ${quote(text)} found`, EXPORT_FIX);
  }

  /** Refuses `A[1]=x`, `1A=x`, `A-B=x`: bash reads them as commands, or refuses them. */
  private refuseInvalidName(index: number, text: string): void {
    if (SUBSCRIPTED_NAME.test(text)) this.refuseSubscript(index);
    const assigned = ASSIGNED_NAME.exec(text);
    if (assigned !== null) this.lexer.refuse(index, `invalid variable name ${quote(assigned[1]!)} found`, NAME_FIX);
  }

  /** Refuses the statement that starts at the next word, naming what bash would do with it. */
  private refuseCommand(): never {
    const lexer = this.lexer;
    const index = lexer.position();
    if (lexer.isOperator(lexer.peek())) lexer.refuseOperator(OPERATOR_FIX);
    const text = lexer.text(index, lexer.readWord(COMMAND_RULES).end);
    this.refuseInvalidName(index, text);
    if (RESERVED_WORDS.has(text)) lexer.refuse(index, `keyword ${quote(text)} found`, ONLY_ASSIGNMENTS);
    if (DECLARATION_BUILTINS.has(text)) {
      const fix = 'Only plain assignments (NAME=value, NAME=( … )) and export are read: remove it';
      lexer.refuse(index, `${quote(text)} found`, fix);
    }
    const next = lexer.peek();
    if (DIGITS.test(text) && (next === '<' || next === '>')) {
      lexer.refuse(index, `redirection ${quote(text + next)} found`, ONLY_ASSIGNMENTS);
    }
    lexer.skipBlanks();
    if (lexer.peek() === '(') lexer.refuse(index, `function definition ${quote(text)} found`, ONLY_ASSIGNMENTS);
    return lexer.refuse(index, `command ${quote(text)} found`, ONLY_ASSIGNMENTS);
  }

  private refuseSubscript(index: number): never {
    const lexer = this.lexer;
    lexer.index = index;
    const name = lexer.readName();
    const found = `array subscript ${quote(name + '[')} found`;
    return lexer.refuse(lexer.position(), found, 'Assign whole arrays with NAME=( … ), without [index]=');
  }

  private refuseBashManaged(name: string, index: number): void {
    if (isBashManaged(name)) {
      const found = `variable ${quote(name)} managed by bash found`;
      this.lexer.refuse(index, found, 'Bash sets or interprets it by itself: use another name');
    }
  }

  private assignString(name: string, index: number, append: boolean, value: string): void {
    const current = append ? this.appendedValue(name, index) : this.values.get(name);
    if (current?.kind === 'array') {
      // Bash would change only the first element.
      const fix = `Assign the whole array with ${name}=( … ) or ${name}+=( … )`;
      this.lexer.refuse(index, `string assigned to the array ${quote(name)} found`, fix);
    }
    const combined = append && current !== undefined ? current.value + value : value;
    this.refuseLongValue(combined.length, index, `value of ${quote(name)}`);
    this.values.set(name, { kind: 'string', value: combined });
    this.recordAssignment(name, index);
  }

  private assignArray(name: string, index: number, append: boolean, elements: string[]): void {
    const current = append ? this.appendedValue(name, index) : undefined;
    if (current?.kind === 'array') {
      // In place: copying the whole array at every `A+=(x)` would make a long file quadratic.
      // No one else holds this array (the reader refuses `$A` of an array).
      for (const element of elements) current.elements.push(element);
    } else {
      this.values.set(name, { kind: 'array', elements: current === undefined ? elements : [current.value, ...elements] });
    }
    this.recordAssignment(name, index);
  }

  /** Refuses a value longer than MAX_VALUE_CHARS, naming it as `what`. */
  private refuseLongValue(length: number, index: number, what: string): void {
    if (length > MAX_VALUE_CHARS) {
      this.lexer.refuse(index, `${what} longer than ${MAX_VALUE_CHARS} characters found`, LONG_VALUE_FIX);
    }
  }

  /** The value `NAME+=` appends to: reading it, like `$NAME`, needs a value bash would not invent. */
  private appendedValue(name: string, index: number): ShellValue | undefined {
    const current = this.values.get(name);
    if (current === undefined) this.refuseDefaulted(name, index, `${name}+=`);
    return current;
  }

  private refuseDefaulted(name: string, index: number, shown: string): void {
    if (BASH_DEFAULTED_NAMES.has(name)) {
      this.lexer.refuse(index, `${quote(shown)} found while ${name} is not in the environment`, DEFAULTED_FIX);
    }
  }

  private recordAssignment(name: string, index: number): void {
    if (!this.firstAssignments.has(name)) this.firstAssignments.set(name, index);
  }

  /** The value of a string assignment: no word splitting, no pathname expansion. */
  private expandString(word: Word): string {
    let length = 0;
    const pieces = word.parts.map((part) => {
      const piece = part.kind === 'text' ? part.text : this.readVariable(part.name, part.index);
      length += piece.length;
      if (part.kind === 'variable') this.refuseLongValue(length, part.index, `value expanded by ${quote('$' + part.name)}`);
      return piece;
    });
    return pieces.join('');
  }

  /**
   * The words bash makes of one array element: only characters that come from an unquoted
   * expansion split; a word with nothing left and no quoted part disappears.
   */
  private expandFields(word: Word): string[] {
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    for (const part of word.parts) {
      if (part.kind === 'text' || part.quoted) {
        field += part.kind === 'text' ? part.text : this.readVariable(part.name, part.index);
        if (part.kind === 'variable') this.refuseLongValue(field.length, part.index, `array element expanded by ${quote('$' + part.name)}`);
        quoted ||= part.quoted;
        continue;
      }
      for (const char of this.readVariable(part.name, part.index)) {
        if (IFS_WHITESPACE.has(char)) {
          if (field !== '' || quoted) fields.push(field);
          field = '';
          quoted = false;
        } else if (EXPANDED_GLOB_CHARACTERS.has(char)) {
          this.lexer.refuse(
            part.index,
            `unquoted ${quote('$' + part.name)} in an array holding ${quote(char)} found`,
            'Bash would match the result against file names: quote the expansion',
          );
        } else {
          field += char;
        }
      }
      // Stored values are within the limit already, so a field can only have grown by one value.
      this.refuseLongValue(field.length, part.index, `array element expanded by ${quote('$' + part.name)}`);
    }
    if (field !== '' || quoted) fields.push(field);
    return fields;
  }

  private readVariable(name: string, index: number): string {
    const lexer = this.lexer;
    if (isBashManaged(name)) {
      const found = `variable ${quote('$' + name)} managed by bash found`;
      lexer.refuse(index, found, 'Bash sets it by itself: write the value literally');
    }
    const value = this.values.get(name);
    if (value === undefined) {
      this.refuseDefaulted(name, index, `$${name}`);
      return '';
    }
    if (value.kind === 'array') {
      const fix = 'Bash would use only its first element: write the value literally';
      return lexer.refuse(index, `${quote('$' + name)} naming an array found`, fix);
    }
    this.expandedChars += value.value.length;
    if (this.expandedChars > MAX_EXPANDED_TOTAL_CHARS) {
      const fix = `No declaration needs this much (${MAX_EXPANDED_TOTAL_CHARS} characters from $NAME expansions in one file): write the values without repeated expansions`;
      lexer.refuse(index, `expansions producing more than ${MAX_EXPANDED_TOTAL_CHARS} characters in all found`, fix);
    }
    return value.value;
  }
}
