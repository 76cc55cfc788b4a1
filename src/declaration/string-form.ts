// The POSIX string form of an instance (`FPM_slot_web="w1 w2"`) and words quoted the way an
// admin would type them: what messages show as the fix to copy. Pure.
import { quote } from 'shell-quote';

/** Words that read the same to every shell without quoting; `=` included, unlike shell-quote. */
const BARE_WORD_PATTERN = /^[A-Za-z0-9_.,:/=@%+-]+$/;

/** A word as an admin would type it: bare when safe, else quoted by shell-quote. */
export function quoteWordForDisplay(word: string): string {
  return BARE_WORD_PATTERN.test(word) ? word : quote([word]);
}

/**
 * The POSIX string form of an instance, `NAME="w1 w2"`, which dash and busybox sh can source
 * and which splits back into exactly `words`.
 */
export function formatStringForm(name: string, words: readonly string[]): string {
  const inner = words.map(quoteWordForDisplay).join(' ');
  return `${name}="${inner.replace(/["\\$`]/g, (char) => `\\${char}`)}"`;
}
