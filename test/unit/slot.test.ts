import { describe, expect, test } from 'vitest';
import { listSlotCandidates, parseSlot, resolveSlot, splitPathVariable } from '../../src/model/slot.js';

describe('parseSlot', () => {
  test.each([
    ['php8.2', { major: '8', minor: '2' }],
    ['8.2', { major: '8', minor: '2' }],
    ['php7.4', { major: '7', minor: '4' }],
    ['php10.12', { major: '10', minor: '12' }],
  ])('%s is a slot', (slot, version) => {
    expect(parseSlot(slot)).toEqual(version);
  });

  test.each(['php', '8', 'php8', 'php-8.2', '8.2.1', 'PHP8.2', ' 8.2', 'php8.x', ''])('%j is not a slot', (slot) => {
    expect(parseSlot(slot)).toBeUndefined();
  });
});

describe('listSlotCandidates', () => {
  test('every layout in order, then $PATH', () => {
    expect(listSlotCandidates({ major: '8', minor: '2' }, { eprefix: '', pathDirs: ['/usr/local/bin', 'relative', '/usr/sbin'] })).toEqual([
      '/usr/lib64/php8.2/bin/php-fpm',
      '/usr/lib/php8.2/bin/php-fpm',
      '/usr/sbin/php-fpm8.2',
      '/usr/sbin/php-fpm82',
      '/opt/remi/php82/root/usr/sbin/php-fpm',
      '/usr/local/bin/php-fpm8.2',
      '/usr/local/bin/php-fpm82',
    ]);
  });

  test('the fixed layouts move under EPREFIX', () => {
    const candidates = listSlotCandidates({ major: '8', minor: '3' }, { eprefix: '/home/me/gentoo', pathDirs: [] });
    expect(candidates).toEqual([
      '/home/me/gentoo/usr/lib64/php8.3/bin/php-fpm',
      '/home/me/gentoo/usr/lib/php8.3/bin/php-fpm',
      '/home/me/gentoo/usr/sbin/php-fpm8.3',
      '/home/me/gentoo/usr/sbin/php-fpm83',
      '/home/me/gentoo/opt/remi/php83/root/usr/sbin/php-fpm',
    ]);
  });
});

describe('resolveSlot', () => {
  test.each([
    ['Gentoo', '/usr/lib64/php8.2/bin/php-fpm'],
    ['Gentoo 32-bit', '/usr/lib/php8.2/bin/php-fpm'],
    ['Debian', '/usr/sbin/php-fpm8.2'],
    ['Alpine', '/usr/sbin/php-fpm82'],
    ['Remi', '/opt/remi/php82/root/usr/sbin/php-fpm'],
    ['PATH', '/opt/bin/php-fpm8.2'],
  ])('finds the %s layout', (_layout, installed) => {
    const resolution = resolveSlot({ major: '8', minor: '2' }, { eprefix: '', pathDirs: ['/opt/bin'] }, (f) => f === installed);
    expect(resolution.binary).toBe(installed);
    expect(resolution.tried.at(-1)).toBe(installed);
  });

  test('nothing found: every path tried is listed', () => {
    const resolution = resolveSlot({ major: '8', minor: '2' }, { eprefix: '', pathDirs: ['/opt/bin'] }, () => false);
    expect(resolution.binary).toBeNull();
    expect(resolution.tried).toHaveLength(7);
  });
});

test('splitPathVariable drops empty entries', () => {
  expect(splitPathVariable('/a::/b:')).toEqual(['/a', '/b']);
  expect(splitPathVariable(undefined)).toEqual([]);
});
