import { expect, test } from 'vitest';
import { measureEditDistance, suggestName } from '../../src/model/suggest.js';

const KEYS = ['slot', 'config', 'binary', 'pidfile', 'prefix', 'php_ini', 'stop_timeout', 'start_timeout', 'enabled'];

test.each([
  ['confg', 'config'],
  ['cnofig', 'config'],
  ['slto', 'slot'],
  ['pid_file', 'pidfile'],
  ['stop_timout', 'stop_timeout'],
  ['enable', 'enabled'],
  ['CONFIG', 'config'],
])('%s suggests %s', (typo, known) => {
  expect(suggestName(typo, KEYS)).toBe(known);
});

test.each(['user', 'listen', 'x', 'memory_limit'])('%s suggests nothing', (name) => {
  expect(suggestName(name, KEYS)).toBeUndefined();
});

test.each([
  ['', '', 0],
  ['abc', 'abc', 0],
  ['abc', 'acb', 1],
  ['kitten', 'sitting', 3],
])('distance(%s, %s) = %i', (a, b, distance) => {
  expect(measureEditDistance(a, b)).toBe(distance);
});
