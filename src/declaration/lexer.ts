// Cuts shell text into words exactly as bash's parser does, for the part of the language that
// only assigns variables. Whatever would make bash do more than that is refused where it starts.

/** Throws the refusal for the character at `index`; never returns. */
export type Refuse = (index: number, found: string, fix: string) => never;

export type WordPart =
  | { kind: 'text'; text: string; quoted: boolean }
  /** `$NAME` or `${NAME}`; `index` is the position of its `$`. */
  | { kind: 'variable'; name: string; quoted: boolean; index: number };

export interface Word {
  /** Position of the first character. */
  index: number;
  /** Position just after the last character. */
  end: number;
  /** A quoted part is kept even when empty: bash keeps `""` as an empty word. */
  parts: WordPart[];
}

export interface WordRules {
  /** Refuse unquoted `* ? [`: bash would replace the word with matching file names. */
  refuseGlobs: boolean;
  /** Refuse unquoted `{ }`: bash would apply brace expansion. */
  refuseBraces: boolean;
  /** Refuse unquoted `~`: bash would replace it with a home directory. */
  refuseTilde: boolean;
  /** Read `$NAME` and `${NAME}`; when false every `$` outside single quotes is refused. */
  expand: boolean;
  /**
   * Refuse an unquoted `$` that starts no expansion (`a$`, `$/`): in an array, bash then stops
   * splitting the expansions before it in the word (`A=($X$/)` keeps `$X` whole).
   */
  refuseLoneDollar: boolean;
}

export const READ_NEVER_EXECUTED = 'The file is read, never executed: write the literal value instead';
const PLAIN_QUOTES_FIX = 'Write the value in plain single or double quotes';
const PARAMETER_FIX = 'Parameters belong to the script that sources the file: write the value literally';

const BLANKS: ReadonlySet<string> = new Set([' ', '\t']);
const OPERATORS: ReadonlySet<string> = new Set([';', '&', '|', '<', '>', '(', ')']);
const GLOB_CHARACTERS: ReadonlySet<string> = new Set(['*', '?', '[']);
const BRACES: ReadonlySet<string> = new Set(['{', '}']);
/** After `$`, these name a special parameter ($@, $?, …). */
const SPECIAL_PARAMETERS: ReadonlySet<string> = new Set(['@', '*', '#', '?', '-', '$', '!']);
/** Inside double quotes a backslash escapes only these (and a newline); before others it stays. */
const DOUBLE_QUOTE_ESCAPABLE: ReadonlySet<string> = new Set(['$', '`', '"', '\\']);
const NAME_START = /^[A-Za-z_]$/;
const NAME_CHARACTER = /^[A-Za-z0-9_]$/;
const DIGIT = /^[0-9]$/;

/** What bash would do with an operator, by its first two characters or, failing that, its first. */
const OPERATOR_NAMES: Readonly<Record<string, string>> = {
  ';;': 'case terminator ";;"',
  ';': 'separator ";"',
  '&&': 'and-list "&&"',
  '&>': 'redirection "&>"',
  '&': 'background operator "&"',
  '||': 'or-list "||"',
  '|': 'pipe "|"',
  '<(': 'process substitution "<("',
  '>(': 'process substitution ">("',
  '<<': 'here-document "<<"',
  '>>': 'redirection ">>"',
  '<': 'redirection "<"',
  '>': 'redirection ">"',
  '((': 'arithmetic command "(("',
  '(': 'parenthesis "("',
  ')': 'parenthesis ")"',
};

/** Quotes a piece of the file for a message, escaping what would not print. */
export function quote(text: string): string {
  return JSON.stringify(text);
}

export class Lexer {
  /** Position of the next character to read. */
  index = 0;

  constructor(
    readonly chars: readonly string[],
    readonly refuse: Refuse,
    /** How messages name the text. */
    private readonly textName: 'file' | 'value',
  ) {}

  /**
   * The next character. Backslash-newline pairs are dropped first, as bash drops them everywhere
   * outside single quotes and comments, even inside a name or between `$` and `{`.
   */
  peek(): string | undefined {
    while (this.chars[this.index] === '\\' && this.chars[this.index + 1] === '\n') this.index += 2;
    return this.chars[this.index];
  }

  /** Position of the next character, past any line continuation. */
  position(): number {
    this.peek();
    return this.index;
  }

  /** Consumes `text` if it comes next, line continuations allowed between its characters. */
  consume(text: string): boolean {
    const start = this.index;
    for (const char of text) {
      if (this.peek() !== char) {
        this.index = start;
        return false;
      }
      this.index++;
    }
    return true;
  }

  lookingAt(text: string): boolean {
    const start = this.index;
    const found = this.consume(text);
    this.index = start;
    return found;
  }

  skipBlanks(): void {
    while (BLANKS.has(this.peek() ?? '')) this.index++;
  }

  skipBlanksAndNewlines(): void {
    for (let char = this.peek(); char === '\n' || BLANKS.has(char ?? ''); char = this.peek()) this.index++;
  }

  /** Skips from `#` to the end of the line; a backslash there does not continue the comment. */
  skipComment(): void {
    while (this.index < this.chars.length && this.chars[this.index] !== '\n') this.index++;
  }

  /** Reads a variable name (`[A-Za-z_][A-Za-z0-9_]*`), or returns '' without moving. */
  readName(): string {
    if (!NAME_START.test(this.peek() ?? '')) return '';
    let name = '';
    while (NAME_CHARACTER.test(this.peek() ?? '')) name += this.chars[this.index++];
    return name;
  }

  isBlank(char: string | undefined): boolean {
    return char !== undefined && BLANKS.has(char);
  }

  isOperator(char: string | undefined): boolean {
    return char !== undefined && OPERATORS.has(char);
  }

  /** Whether the current word ends here: end of text, blank, newline or operator. */
  atWordEnd(): boolean {
    const char = this.peek();
    return char === undefined || char === '\n' || BLANKS.has(char) || OPERATORS.has(char);
  }

  /** The source text from `start` to `end` as bash sees it, without line continuations. */
  text(start: number, end: number): string {
    return this.chars.slice(start, end).join('').replaceAll('\\\n', '');
  }

  /** Refuses the operator that starts at the next character, naming what bash would do with it. */
  refuseOperator(fix: string): never {
    const at = this.position();
    const first = this.chars[at]!;
    this.index++;
    const pair = first + (this.peek() ?? '');
    this.index = at;
    const name = OPERATOR_NAMES[pair] ?? OPERATOR_NAMES[first] ?? quote(first);
    return this.refuse(at, `${name} found`, fix);
  }

  /** Reads one word up to a blank, newline, operator or the end, keeping which parts were quoted. */
  readWord(rules: WordRules): Word {
    const index = this.position();
    const parts: WordPart[] = [];
    while (!this.atWordEnd()) {
      const at = this.index;
      const char = this.chars[at]!;
      if (char === "'") {
        this.readSingleQuoted(parts);
      } else if (char === '"') {
        this.readDoubleQuoted(parts, rules);
      } else if (char === '$') {
        this.readDollar(parts, false, rules);
      } else if (char === '\\') {
        const escaped = this.chars[at + 1];
        if (escaped === undefined) {
          const fix = "Remove it, or write '\\' for a literal backslash";
          this.refuse(at, `backslash at the end of the ${this.textName} found`, fix);
        }
        pushText(parts, escaped, true);
        this.index += 2;
      } else if (char === '`') {
        this.refuse(at, 'command substitution "`" found', READ_NEVER_EXECUTED);
      } else {
        this.refuseUnquoted(at, char, rules);
        pushText(parts, char, false);
        this.index++;
      }
    }
    return { index, end: this.index, parts };
  }

  private refuseUnquoted(at: number, char: string, rules: WordRules): void {
    if (rules.refuseTilde && char === '~') {
      const fix = "Bash would replace it with a home directory: quote it ('~') or write the path literally";
      this.refuse(at, 'unquoted tilde "~" found', fix);
    }
    if (rules.refuseGlobs && GLOB_CHARACTERS.has(char)) {
      const fix = 'Bash would replace the word with matching file names: quote it';
      this.refuse(at, `unquoted glob character ${quote(char)} found`, fix);
    }
    if (rules.refuseBraces && BRACES.has(char)) {
      this.refuse(at, `unquoted brace ${quote(char)} found`, 'Bash would apply brace expansion: quote it');
    }
  }

  private readSingleQuoted(parts: WordPart[]): void {
    const start = this.index;
    const end = this.chars.indexOf("'", start + 1);
    if (end === -1) this.refuse(start, `unterminated single quote found`, "Close the quote with '");
    pushText(parts, this.chars.slice(start + 1, end).join(''), true);
    this.index = end + 1;
  }

  private readDoubleQuoted(parts: WordPart[], rules: WordRules): void {
    const start = this.index;
    this.index++;
    pushText(parts, '', true);
    for (;;) {
      const at = this.index;
      const char = this.chars[at];
      if (char === undefined) this.refuse(start, 'unterminated double quote found', 'Close the quote with "');
      if (char === '"') {
        this.index++;
        return;
      }
      if (char === '$') {
        this.readDollar(parts, true, rules);
      } else if (char === '`') {
        this.refuse(at, 'command substitution "`" found', READ_NEVER_EXECUTED);
      } else if (char === '\\' && this.chars[at + 1] === '\n') {
        this.index += 2;
      } else if (char === '\\' && DOUBLE_QUOTE_ESCAPABLE.has(this.chars[at + 1] ?? '')) {
        pushText(parts, this.chars[at + 1]!, true);
        this.index += 2;
      } else {
        pushText(parts, char, true);
        this.index++;
      }
    }
  }

  /** Reads what starts with `$`: a variable, a literal `$`, or something refused. */
  private readDollar(parts: WordPart[], quoted: boolean, rules: WordRules): void {
    const dollar = this.index;
    if (!rules.expand) {
      const fix = 'The value is split into words, never expanded: write the text literally, or in single quotes';
      this.refuse(dollar, '"$" found', fix);
    }
    this.index++;
    const next = this.peek();
    if (next === '(') {
      const found = this.lookingAt('((') ? 'arithmetic expansion "$((" found' : 'command substitution "$(" found';
      this.refuse(dollar, found, READ_NEVER_EXECUTED);
    }
    if (next === '[') this.refuse(dollar, 'arithmetic expansion "$[" found', READ_NEVER_EXECUTED);
    if (next === '{') {
      this.readBraced(dollar, parts, quoted);
      return;
    }
    if (!quoted && next === "'") {
      this.refuse(dollar, `ANSI-C quoting "$'" found`, PLAIN_QUOTES_FIX);
    }
    if (!quoted && next === '"') {
      this.refuse(dollar, `locale translation ${quote('$"')} found`, PLAIN_QUOTES_FIX);
    }
    if (next !== undefined && NAME_START.test(next)) {
      parts.push({ kind: 'variable', name: this.readName(), quoted, index: dollar });
      return;
    }
    if (next !== undefined && DIGIT.test(next)) {
      this.refuse(dollar, `positional parameter ${quote('$' + next)} found`, PARAMETER_FIX);
    }
    if (next !== undefined && SPECIAL_PARAMETERS.has(next)) {
      this.refuse(dollar, `special parameter ${quote('$' + next)} found`, PARAMETER_FIX);
    }
    if (!quoted && rules.refuseLoneDollar) {
      this.refuse(dollar, 'unquoted "$" in an array element found', `Quote it: '$'`);
    }
    // Bash keeps a `$` that cannot start an expansion: `a$`, `$/`, `"$"`.
    pushText(parts, '$', quoted);
  }

  /** Reads `${NAME}`; every other `${…}` form (defaults, lengths, subscripts, …) is refused. */
  private readBraced(dollar: number, parts: WordPart[], quoted: boolean): void {
    this.index++;
    const name = this.readName();
    const close = this.peek();
    if (name !== '' && close === '}') {
      this.index++;
      parts.push({ kind: 'variable', name, quoted, index: dollar });
      return;
    }
    if (close === undefined || this.chars.indexOf('}', this.index) === -1) {
      this.refuse(dollar, 'unterminated "${" found', 'Close it with "}"');
    }
    const seen = '${' + name + close;
    if (name === '' && DIGIT.test(close)) {
      this.refuse(dollar, `positional parameter ${quote(seen)} found`, PARAMETER_FIX);
    }
    if (name === '' && SPECIAL_PARAMETERS.has(close)) {
      this.refuse(dollar, `special parameter or expansion ${quote(seen)} found`, PARAMETER_FIX);
    }
    const fix = 'Only $NAME and ${NAME} are read: write the value literally';
    this.refuse(dollar, `parameter expansion ${quote(seen)} found`, fix);
  }
}

/** Appends text, merging with the previous part when both are quoted alike. */
function pushText(parts: WordPart[], text: string, quoted: boolean): void {
  const last = parts.at(-1);
  if (last?.kind === 'text' && last.quoted === quoted) {
    last.text += text;
  } else {
    parts.push({ kind: 'text', text, quoted });
  }
}
