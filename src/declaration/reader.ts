// Reads the declaration file the way `source` in bash would assign its variables, without
// executing anything: what cannot be read with bash's exact meaning is refused, never guessed.
// This module is the statement grammar (assignments, arrays, export; every other statement is
// refused, naming what bash would do); the values live in expansion.ts, words in words.ts. Pure.

import type { Declaration, Variable } from './declaration.js';
import { DeclarationError } from '../errors.js';
import { ShellVariables } from './expansion.js';
import { Lexer, quote, type Word } from './lexer.js';
import { decodeSource, type SourceText } from './source.js';
import { COMMAND_RULES, ELEMENT_RULES, EXPORT_RULES, STRING_RULES } from './words.js';

export interface ReadOptions {
  /** Named in every message. */
  file: string;
  /** The environment bash would start with; `undefined` means unset. */
  env: Readonly<Record<string, string | undefined>>;
}

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

/** Reads the variables that `source file` in bash would assign, or refuses the whole file. */
export function readDeclaration(source: Uint8Array | string, options: ReadOptions): Declaration {
  const reader = new Reader(decodeSource(source, options.file), options);
  reader.readStatements();
  return { file: options.file, variables: reader.assignedVariables() };
}

interface PendingExport {
  name: string;
  index: number;
  append: boolean;
  word: Word;
}

class Reader {
  private readonly lexer: Lexer;
  private readonly variables: ShellVariables;

  constructor(
    private readonly source: SourceText,
    options: ReadOptions,
  ) {
    const refuse = (index: number, found: string, fix: string): never => {
      throw new DeclarationError(source.locate(index), found, fix);
    };
    this.lexer = new Lexer(source.chars, refuse, 'file');
    this.variables = new ShellVariables(options.env, refuse);
  }

  assignedVariables(): Variable[] {
    return this.variables.assigned((index) => this.source.locate(index));
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
    this.variables.refuseBashManaged(name, index);
    if (lexer.peek() === '(') {
      this.variables.assignArray(name, index, append, this.readArray());
    } else {
      this.variables.assignString(name, index, append, this.variables.expandString(lexer.readWord(STRING_RULES)));
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
        for (const field of this.variables.expandFields(word)) {
          this.variables.refuseLongValue(field.length, word.index, 'array element');
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
      this.variables.refuseBashManaged(name, index);
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
    const values = pending.map((assignment) => this.variables.expandString(assignment.word));
    pending.forEach((assignment, position) => {
      this.variables.assignString(assignment.name, assignment.index, assignment.append, values[position]!);
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
}
