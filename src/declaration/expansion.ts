// The variables of a declaration as bash holds them while it sources the file: assignment (`=`,
// `+=`, arrays), `$NAME` expansion with bash's word splitting in arrays, and the limits that keep
// memory bounded (a value's length, all expansions of a file together). Names bash manages or
// defaults by itself are refused, as is whatever bash would expand further. Pure.
import type { ShellValue, Variable } from './declaration.js';
import type { SourceLocation } from '../errors.js';
import { quote, type Refuse, type Word } from './lexer.js';

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

const DEFAULTED_FIX = 'Bash may give it a value of its own: write the value literally';

function isBashManaged(name: string): boolean {
  return BASH_MANAGED_NAMES.has(name) || BASH_MANAGED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** The values bash would hold while it sources the file; every refusal goes through `refuse`. */
export class ShellVariables {
  /** Current values: the environment overlaid with what the file assigned so far. */
  private readonly values = new Map<string, ShellValue>();
  /** Position of each variable's first assignment, in assignment order. */
  private readonly firstAssignments = new Map<string, number>();
  /** Characters produced by expansions so far, against MAX_EXPANDED_TOTAL_CHARS. */
  private expandedChars = 0;

  constructor(
    env: Readonly<Record<string, string | undefined>>,
    private readonly refuse: Refuse,
  ) {
    for (const [name, value] of Object.entries(env)) {
      if (value !== undefined) this.values.set(name, { kind: 'string', value });
    }
  }

  /** The variables the file assigned, in the order of their first assignment. */
  assigned(locate: (index: number) => SourceLocation): Variable[] {
    return Array.from(this.firstAssignments, ([name, index]): Variable => {
      const { line, column } = locate(index);
      return { name, value: this.values.get(name)!, line, column };
    });
  }

  refuseBashManaged(name: string, index: number): void {
    if (isBashManaged(name)) {
      const found = `variable ${quote(name)} managed by bash found`;
      this.refuse(index, found, 'Bash sets or interprets it by itself: use another name');
    }
  }
  assignString(name: string, index: number, append: boolean, value: string): void {
    const current = append ? this.appendedValue(name, index) : this.values.get(name);
    if (current?.kind === 'array') {
      // Bash would change only the first element.
      const fix = `Assign the whole array with ${name}=( … ) or ${name}+=( … )`;
      this.refuse(index, `string assigned to the array ${quote(name)} found`, fix);
    }
    const combined = append && current !== undefined ? current.value + value : value;
    this.refuseLongValue(combined.length, index, `value of ${quote(name)}`);
    this.values.set(name, { kind: 'string', value: combined });
    this.recordAssignment(name, index);
  }
  assignArray(name: string, index: number, append: boolean, elements: string[]): void {
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
  refuseLongValue(length: number, index: number, what: string): void {
    if (length > MAX_VALUE_CHARS) {
      this.refuse(index, `${what} longer than ${MAX_VALUE_CHARS} characters found`, LONG_VALUE_FIX);
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
      this.refuse(index, `${quote(shown)} found while ${name} is not in the environment`, DEFAULTED_FIX);
    }
  }
  private recordAssignment(name: string, index: number): void {
    if (!this.firstAssignments.has(name)) this.firstAssignments.set(name, index);
  }
  /** The value of a string assignment: no word splitting, no pathname expansion. */
  expandString(word: Word): string {
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
  expandFields(word: Word): string[] {
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
          this.refuse(
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
    if (isBashManaged(name)) {
      const found = `variable ${quote('$' + name)} managed by bash found`;
      this.refuse(index, found, 'Bash sets it by itself: write the value literally');
    }
    const value = this.values.get(name);
    if (value === undefined) {
      this.refuseDefaulted(name, index, `$${name}`);
      return '';
    }
    if (value.kind === 'array') {
      const fix = 'Bash would use only its first element: write the value literally';
      return this.refuse(index, `${quote('$' + name)} naming an array found`, fix);
    }
    this.expandedChars += value.value.length;
    if (this.expandedChars > MAX_EXPANDED_TOTAL_CHARS) {
      const fix = `No declaration needs this much (${MAX_EXPANDED_TOTAL_CHARS} characters from $NAME expansions in one file): write the values without repeated expansions`;
      this.refuse(index, `expansions producing more than ${MAX_EXPANDED_TOTAL_CHARS} characters in all found`, fix);
    }
    return value.value;
  }
}
