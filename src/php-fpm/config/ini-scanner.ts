// php's INI scanner as php-fpm feeds it (fpm_conf_load_ini_file): one physical line at a time, so
// nothing spans two lines; `;` starts a comment and `#` does not. It turns a line into statements
// ([section], key = value, key[offset] = value), resolving quotes, `${VAR}` and constants, and
// hands values to expressions.ts. Pure.
import { evaluateValue, iniSyntaxError, substituteConstant, type ValueToken } from './expressions.js';
import type { FpmConfigError, SourceRef } from './types.js';

export type Statement =
  | { kind: 'section'; name: string }
  | { kind: 'entry'; key: string; value: string | null }
  | { kind: 'array'; key: string; offset: string; value: string };

export interface ScanContext {
  at: SourceRef;
  env: Readonly<Record<string, string | undefined>>;
  constants: Readonly<Record<string, string>>;
  warn(message: string, refusedByPhpFpm: boolean): void;
}

interface Rule<K extends string> {
  kind: K;
  pattern: RegExp;
}

// Order matters only for equally long matches, as in the re2c scanner (earlier rule wins).
const VALUE_RULES: Rule<string>[] = [
  { kind: 'true', pattern: /(?:true|yes|on)[ \t]*/iy },
  { kind: 'false', pattern: /(?:false|none|off|no|null)[ \t]*/iy },
  { kind: 'end', pattern: /[ \t]*(?:;[^\r]*)?(?:\r|$)/y },
  { kind: 'quote', pattern: /[ \t]*"/y },
  { kind: 'raw', pattern: /'[^'\r]+'/y },
  { kind: 'variable', pattern: /\$\{/y },
  { kind: 'op', pattern: /[|&^~!()][ \t]*/y },
  { kind: 'equals', pattern: /=/y },
  { kind: 'space', pattern: /[ \t]+/y },
  // A `$` not opening `${` is literal and swallows the next character, as php's LITERAL_DOLLAR.
  { kind: 'text', pattern: /(?:[^$= \t\r;&|^~()!"']|\$(?!\{)(?:\\[^]|[^\r])?)+/y },
];

// Section names and array offsets: spaces belong to the name, operators are plain characters.
const SECTION_RULES: Rule<string>[] = [
  { kind: 'end', pattern: /[ \t]*\][ \t]*\r?/y },
  { kind: 'quote', pattern: /[ \t]*"/y },
  { kind: 'raw', pattern: /'[^'\r]+'/y },
  { kind: 'variable', pattern: /\$\{/y },
  { kind: 'text', pattern: /(?:[^$\r;"'\]\\]|\\[^]|\$(?!\{)(?:\\[^]|[^\r])?)+/y },
];

const LABEL_PATTERN = /[^=[\];\r\t&|^$~(){}!"]+/y;
const SPACES_PATTERN = /[ \t]*/y;
const VARIABLE_NAME_PATTERN = /([^}\r]*)\}/y;

function matchLongest<K extends string>(rules: Rule<K>[], line: string, pos: number): { kind: K; text: string } | null {
  let best: { kind: K; text: string } | null = null;
  for (const rule of rules) {
    rule.pattern.lastIndex = pos;
    const match = rule.pattern.exec(line);
    if (match && (best === null || match[0].length > best.text.length)) {
      best = { kind: rule.kind, text: match[0] };
    }
  }
  return best;
}

function syntaxError(ctx: ScanContext, found: string, fix: string): FpmConfigError {
  return iniSyntaxError(ctx.at, found, fix);
}

function describeChar(ch: string | undefined): string {
  return ch === undefined || ch === '\r' ? 'end of line' : `'${ch}'`;
}

/** Reads `${NAME}` starting at `pos` (on the `$`); returns the variable's value and the end. */
function readVariable(line: string, pos: number, ctx: ScanContext): { text: string; end: number } {
  VARIABLE_NAME_PATTERN.lastIndex = pos + 2;
  const match = VARIABLE_NAME_PATTERN.exec(line);
  const name = match?.[1];
  if (!match || name === undefined || name === '') {
    throw syntaxError(ctx, `'${line.slice(pos)}' is not a complete \${NAME} reference`, 'Write ${NAME} with a variable name and a closing }, or quote a literal $ as "\\$".');
  }
  // php looks in php.ini directives first, then the environment; only the latter is known here.
  return { text: ctx.env[name] ?? '', end: VARIABLE_NAME_PATTERN.lastIndex };
}

/** Reads a double-quoted string whose opening quote ends at `pos`; returns text and end. */
function readDoubleQuoted(line: string, pos: number, ctx: ScanContext): { text: string; end: number } {
  let text = '';
  let i = pos;
  for (;;) {
    const ch = line[i];
    if (ch === undefined) {
      throw syntaxError(ctx, `the double-quoted string '${line.slice(pos - 1)}' is not closed on this line`, 'Close the string with " on the same line: php-fpm reads every line on its own.');
    }
    if (ch === '"') {
      SPACES_PATTERN.lastIndex = i + 1;
      SPACES_PATTERN.exec(line);
      return { text, end: SPACES_PATTERN.lastIndex };
    }
    if (ch === '$' && line[i + 1] === '{') {
      const variable = readVariable(line, i, ctx);
      text += variable.text;
      i = variable.end;
      continue;
    }
    if (ch === '\\') {
      const next = line[i + 1];
      const afterNext = line[i + 2];
      // php keeps a backslash before a closing quote at the end of the line ("C:\dir\").
      const windowsPathEnd = next === '"' && (afterNext === undefined || afterNext === '\r');
      if (next === undefined || windowsPathEnd) {
        text += '\\';
        i += 1;
      } else if (next === '"' || next === '\\' || next === '$') {
        text += next;
        i += 2;
      } else {
        text += `\\${next}`;
        i += 2;
      }
      continue;
    }
    text += ch;
    i += 1;
  }
}

/** Reads a section name or array offset after its '['; returns the text and the end after ']'. */
function readBracketed(line: string, pos: number, ctx: ScanContext, what: string): { text: string; end: number } {
  let text = '';
  let i = pos;
  for (;;) {
    const token = matchLongest(SECTION_RULES, line, i);
    if (token === null) {
      throw syntaxError(ctx, `the ${what} '${line.slice(pos - 1)}' has no closing ']' (found ${describeChar(line[i])})`, `Close the ${what} with ']' on the same line; ';' starts a comment even inside brackets.`);
    }
    switch (token.kind) {
      case 'end':
        return { text, end: i + token.text.length };
      case 'quote': {
        const quoted = readDoubleQuoted(line, i + token.text.length, ctx);
        text += quoted.text;
        i = quoted.end;
        continue;
      }
      case 'raw':
        text += token.text.slice(1, -1);
        break;
      case 'variable': {
        const variable = readVariable(line, i, ctx);
        text += variable.text;
        i = variable.end;
        continue;
      }
      default:
        text += token.text;
    }
    i += token.text.length;
  }
}

/** Splits a value into tokens, up to the end of the line or a comment. */
function scanValue(line: string, pos: number, ctx: ScanContext): { tokens: ValueToken[]; end: number } {
  const tokens: ValueToken[] = [];
  let i = pos;
  for (;;) {
    const token = matchLongest(VALUE_RULES, line, i);
    if (token === null) {
      // Only a single quote that opens no raw string gets here. An empty '' leaves php-fpm with
      // a key without value; an unclosed ' ends the value silently, or is a syntax error when
      // nothing came before it.
      if (line[i + 1] === "'") {
        throw syntaxError(ctx, `the empty '' in '${line.slice(pos)}' leaves the key without a value`, "Remove the empty '' or write \"\" for an empty string.");
      }
      if (tokens.length === 0) {
        throw syntaxError(ctx, `the single-quoted string '${line.slice(i)}' is not closed`, "Close the string with ' on the same line, or use double quotes.");
      }
      ctx.warn(`php-fpm ignores everything from the unmatched ' in '${line.slice(i)}'`, false);
      return { tokens, end: line.length };
    }
    switch (token.kind) {
      case 'end':
        return { tokens, end: i + token.text.length };
      case 'equals':
        throw syntaxError(ctx, `'=' inside the value '${line.slice(pos)}'`, 'Quote a value that contains "=": key = "a=b".');
      case 'true':
      case 'false':
        tokens.push({ kind: 'bool', text: token.kind === 'true' ? '1' : '' });
        break;
      case 'quote': {
        const quoted = readDoubleQuoted(line, i + token.text.length, ctx);
        tokens.push({ kind: 'text', text: quoted.text });
        i = quoted.end;
        continue;
      }
      case 'raw':
        tokens.push({ kind: 'text', text: token.text.slice(1, -1) });
        break;
      case 'variable': {
        const variable = readVariable(line, i, ctx);
        tokens.push({ kind: 'text', text: variable.text });
        i = variable.end;
        continue;
      }
      case 'op':
        tokens.push({ kind: 'op', op: token.text.charAt(0) });
        break;
      case 'text':
        tokens.push({ kind: 'text', text: substituteConstant(token.text, ctx.constants) });
        break;
      default:
        tokens.push({ kind: 'text', text: token.text });
    }
    i += token.text.length;
  }
}


function readValue(line: string, pos: number, ctx: ScanContext): { value: string; end: number } {
  SPACES_PATTERN.lastIndex = pos;
  SPACES_PATTERN.exec(line);
  const start = SPACES_PATTERN.lastIndex;
  const { tokens, end } = scanValue(line, start, ctx);
  return { value: evaluateValue(tokens, ctx.at, line.slice(start, end).replace(/\r$/, '')), end };
}

/** All statements of one physical line (a bare CR also ends a statement, as in php's scanner). */
export function scanLine(line: string, ctx: ScanContext): Statement[] {
  const statements: Statement[] = [];
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      i += 1;
      continue;
    }
    if (ch === ';') {
      const cr = line.indexOf('\r', i);
      i = cr === -1 ? line.length : cr + 1;
      continue;
    }
    if (ch === '[') {
      const section = readBracketed(line, i + 1, ctx, 'section name');
      statements.push({ kind: 'section', name: section.text });
      i = section.end;
      continue;
    }
    LABEL_PATTERN.lastIndex = i;
    const label = LABEL_PATTERN.exec(line);
    if (label === null) {
      throw syntaxError(ctx, `unexpected ${describeChar(ch)} where a key was expected`, 'Start the line with a key (key = value), a [section] or a ; comment.');
    }
    const key = label[0].replace(/ +$/, '');
    SPACES_PATTERN.lastIndex = i + label[0].length;
    SPACES_PATTERN.exec(line);
    i = SPACES_PATTERN.lastIndex;
    const next = line[i];
    if (next === '=') {
      const { value, end } = readValue(line, i + 1, ctx);
      statements.push({ kind: 'entry', key, value });
      i = end;
    } else if (next === '[') {
      const offset = readBracketed(line, i + 1, ctx, `offset of '${key}[...]'`);
      SPACES_PATTERN.lastIndex = offset.end;
      SPACES_PATTERN.exec(line);
      i = SPACES_PATTERN.lastIndex;
      if (line[i] !== '=') {
        throw syntaxError(ctx, `'${key}[${offset.text}]' is not followed by '='`, `Write ${key}[${offset.text}] = value.`);
      }
      const { value, end } = readValue(line, i + 1, ctx);
      statements.push({ kind: 'array', key, offset: offset.text, value });
      i = end;
    } else if (next === undefined || next === '\r' || next === ';') {
      statements.push({ kind: 'entry', key, value: null });
    } else {
      throw syntaxError(ctx, `unexpected ${describeChar(next)} after the key '${key}'`, "Write key = value; quote values that contain special characters.");
    }
  }
  return statements;
}
