// Tryout 2, finding 10e: an instance whose arguments and environment exec would refuse (E2BIG).
import { describe, expect, test } from 'vitest';
import { describeExecTooLarge, measureExec } from '../../src/process/probes.js';
import { guarded } from '../../src/process/control.js';

describe('measureExec', () => {
  test('counts each string with its NUL, in UTF-8 bytes, and a pointer to each', () => {
    expect(measureExec(['/usr/sbin/php-fpm8.2', '-D'], { A: '€' })).toEqual({ bytes: (21 + 8) + (3 + 8) + (6 + 8), longest: 21 });
  });
});

describe('describeExecTooLarge', () => {
  test('over the total limit: names the size and the limit', () => {
    expect(describeExecTooLarge({ bytes: 2_100_000, longest: 1000 }, 2_097_152)).toMatch(/take 2100000 bytes .* more than the 2097152 the kernel allows here \(ARG_MAX/);
    expect(describeExecTooLarge({ bytes: 2_097_152, longest: 1000 }, 2_097_152)).toBeNull();
  });
  test('one string over 128 KiB: MAX_ARG_STRLEN', () => {
    expect(describeExecTooLarge({ bytes: 200_000, longest: 131_073 }, 2_097_152)).toMatch(/takes 131073 bytes, more than the 131072 the kernel allows for one \(MAX_ARG_STRLEN\)/);
  });
});

describe('start meeting E2BIG', () => {
  test('says what is too large, not "check that path"', async () => {
    const error = Object.assign(new Error('spawn E2BIG'), { code: 'E2BIG', errno: -7, syscall: 'spawn', path: '/usr/sbin/php-fpm8.2' });
    const outcome = await guarded('a', 'started', () => Promise.reject(error));
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toBe('not started: the kernel refused to run php-fpm with arguments and an environment this large (E2BIG); shorten the env= and args= values (php-fpm-multi check names the size and the limit)');
  });
});
