// Values as php's INI parser evaluates them once the scanner has split them into tokens: text
// pieces concatenate, `| & ^ ~ ! ( )` are C-int operators, a bare constant name is replaced by
// its value; and php-fpm's readings of a finished value (booleans, times). Pure.
import { FpmConfigError, type SourceRef } from './types.js';

/** One piece of a value, as the scanner found it (variables and quotes already resolved). */
export type ValueToken =
  | { kind: 'text'; text: string }
  | { kind: 'bool'; text: '1' | '' }
  | { kind: 'op'; op: string };

const CONSTANT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// php-fpm 8.2's boolean reading of an already INI-processed string (case-sensitive).
const TRUE_STRINGS = new Set(['1', 'yes', 'on', 'true']);
const FALSE_STRINGS = new Set(['', '0', 'no', 'off', 'false', 'none']);
/** php-fpm's fpm_conf_set_time: a number of seconds, or of minutes, hours, days with m, h, d. */
const TIME_UNITS_S: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** A line php's INI parser refuses: php-fpm does not start, so the parser throws. */
export function iniSyntaxError(at: SourceRef, found: string, fix: string): FpmConfigError {
  return new FpmConfigError(at, `php's INI parser refuses this line: ${found}`, fix);
}

/** A bare word naming a known constant (E_ALL) becomes its value; anything else stays as written. */
export function substituteConstant(text: string, constants: Readonly<Record<string, string>>): string {
  if (!CONSTANT_NAME.test(text)) return text;
  return Object.hasOwn(constants, text) ? (constants[text] ?? text) : text;
}

/** C atoi(): leading blanks, optional sign, digits; anything else reads as 0. */
function atoi(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]) | 0;
}

/** Evaluates the INI expression grammar: strings concatenate, operators work on C ints. */
export function evaluateValue(tokens: ValueToken[], at: SourceRef, source: string): string {
  if (tokens.length === 0) return '';
  const bool = tokens.find((token) => token.kind === 'bool');
  if (bool !== undefined) {
    if (tokens.length === 1) return bool.text;
    throw iniSyntaxError(at, `a yes/no/on/off/true/false/none/null word is mixed with other text in '${source}'`, 'Quote the whole value ("yes please") or use the word alone.');
  }
  let index = 0;
  const unexpected = (): FpmConfigError => {
    const token = tokens[index];
    const what = token === undefined ? 'the end of the value' : token.kind === 'op' ? `'${token.op}'` : `'${token.text}'`;
    return iniSyntaxError(at, `unexpected ${what} in the value '${source}'`, 'Quote the value if "|&^~!()" are meant literally, and balance the parentheses.');
  };
  const readUnary = (): string => {
    const token = tokens[index];
    if (token === undefined) throw unexpected();
    if (token.kind === 'op') {
      if (!'~!('.includes(token.op)) throw unexpected();
      index += 1;
      if (token.op === '~') return String(~atoi(readUnary()));
      if (token.op === '!') return String(atoi(readUnary()) === 0 ? 1 : 0);
      const inner = readExpression();
      const close = tokens[index];
      if (close?.kind !== 'op' || close.op !== ')') throw unexpected();
      index += 1;
      return inner;
    }
    let text = '';
    for (let piece = tokens[index]; piece?.kind === 'text'; piece = tokens[index]) {
      text += piece.text;
      index += 1;
    }
    return text;
  };
  const readExpression = (): string => {
    let left = readUnary();
    for (;;) {
      const token = tokens[index];
      if (token?.kind !== 'op' || !'|&^'.includes(token.op)) return left;
      index += 1;
      const right = atoi(readUnary());
      const a = atoi(left);
      left = String(token.op === '|' ? a | right : token.op === '&' ? a & right : a ^ right);
    }
  };
  const value = readExpression();
  if (index !== tokens.length) throw unexpected();
  return value;
}

export function parseBoolean(value: string, key: string, at: SourceRef): boolean {
  if (TRUE_STRINGS.has(value)) return true;
  if (FALSE_STRINGS.has(value)) return false;
  throw new FpmConfigError(at, `'${key} = ${value}' is not a boolean php-fpm accepts`, `Write ${key} = yes or ${key} = no.`);
}

/** Seconds, or null when php-fpm does not read the value as a time. */
export function parseTimeS(value: string): number | null {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  const unit = TIME_UNITS_S[match?.[2] ?? ''];
  if (match === null || unit === undefined) return null;
  return Number(match[1]) * unit;
}
