import { expect, test } from 'vitest';
import { UsageError } from '../../src/errors.js';
import type { Instance } from '../../src/model/instance.js';
import { selectInstances } from '../../src/model/selection.js';

function instance(name: string, enabled = true): Instance {
  return { name, enabled } as Instance;
}
const INSTANCES = ['1', '2', '3', '4', '5', 'web'].map((n) => instance(n)).concat(instance('old', false));
const names = (selected: Instance[]): string[] => selected.map((i) => i.name);

test.each([
  [[], ['1', '2', '3', '4', '5', 'web']],
  [['web'], ['web']],
  [['old'], ['old']],
  [['1,3-5'], ['1', '3', '4', '5']],
  [['5', '1'], ['1', '5']],
  [['2,2', '2-3'], ['2', '3']],
  [['web,'], ['web']],
])('%j selects %j in declaration order', (selection, expected) => {
  expect(names(selectInstances(INSTANCES, selection))).toEqual(expected);
});

test.each([
  [['nope'], 'no instance "nope" in the declaration file (known: 1, 2, 3, 4, 5, web, old)'],
  [['4-7'], 'no instance "6" in the declaration file (known:'],
  [['wbe'], 'no instance "wbe" in the declaration file (did you mean "web"?) (known: 1, 2, 3, 4, 5, web, old)'],
  [['3-1'], 'runs backwards; write 1-3'],
])('%j is a usage error', (selection, message) => {
  expect(() => selectInstances(INSTANCES, selection)).toThrow(UsageError);
  expect(() => selectInstances(INSTANCES, selection)).toThrow(message);
});
