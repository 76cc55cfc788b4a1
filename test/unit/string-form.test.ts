import { expect, test } from 'vitest';
import { readDeclaration } from '../../src/declaration/reader.js';
import { splitWords } from '../../src/declaration/words.js';
import { formatStringForm, quoteWordForDisplay } from '../../src/declaration/string-form.js';

test.each([
  ['slot=php8.2', 'slot=php8.2'],
  ['config=/etc/php/a b.conf', "'config=/etc/php/a b.conf'"],
  ["it's", `"it's"`],
  ['', "''"],
])('quoteWordForDisplay(%j) = %s', (word, quoted) => {
  expect(quoteWordForDisplay(word)).toBe(quoted);
});

test.each([
  [['slot=php8.2', 'config=/etc/php/a.conf']],
  [['env=MSG=hi there', "env=Q=it's", 'env=D="x"', 'env=B=a\\b', 'env=S=$HOME', 'env=T=`x`', 'args=-d a=1', '#x', 'a#b', '', '*.conf', '~/x']],
])('the string form of %j reads back as the same words', (words) => {
  const line = formatStringForm('FPM_slot_1', words);
  const [variable] = readDeclaration(`${line}\n`, { file: 'test', env: {} }).variables;
  expect(variable?.value.kind).toBe('string');
  const value = variable?.value.kind === 'string' ? variable.value.value : '';
  expect(splitWords(value, { file: 'test', line: 1, column: 1 })).toEqual(words);
});
