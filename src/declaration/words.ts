// Words as bash's quoting rules make them: the rules each place of a statement reads words with,
// and splitWords, which splits a value (`args=…`, a string-form instance) like
// `eval "words=( $value )"` would without expanding anything. Pure.
import { DeclarationError, type SourceLocation } from '../errors.js';
import { Lexer, quote, type WordRules } from './lexer.js';
import { findUnreadableCharacter } from './source.js';

/** `A=value`: bash splits nothing and expands no pattern. */
export const STRING_RULES: WordRules = {
  refuseGlobs: false,
  refuseBraces: false,
  refuseTilde: true,
  expand: true,
  refuseLoneDollar: false,
};
/** `export A=value`: like an assignment, except that bash applies brace expansion. */
export const EXPORT_RULES: WordRules = { ...STRING_RULES, refuseBraces: true };
/** Elements of `A=( … )`: bash applies brace, tilde and pathname expansion and word splitting. */
export const ELEMENT_RULES: WordRules = { ...STRING_RULES, refuseGlobs: true, refuseBraces: true, refuseLoneDollar: true };
/** A value split into words, never expanded. */
const SPLIT_RULES: WordRules = { ...ELEMENT_RULES, expand: false };
/** A word refused anyway, read only to name it in the message. */
export const COMMAND_RULES: WordRules = { ...STRING_RULES, refuseTilde: false };

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
