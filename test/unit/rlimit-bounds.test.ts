// Tryout 2, finding 4: which rlimit_files / rlimit_core php-fpm's setrlimit would refuse (EPERM).
import { describe, expect, test } from 'vitest';
import { describeLimitTooHigh, type RlimitBounds } from '../../src/process/preflight.js';
import type { FpmLimit } from '../../src/php-fpm/config/types.js';

const AT = { file: '/etc/php/fpm.conf', line: 3 };
const files = (value: string): FpmLimit => ({ key: 'rlimit_files', value, at: AT });
const core = (value: string): FpmLimit => ({ key: 'rlimit_core', value, at: AT });
const CONTAINER: RlimitBounds = { nrOpen: 1_048_576, hardFiles: 20_000, hardCore: 0, canRaise: false };
const ROOT: RlimitBounds = { nrOpen: 1_048_576, hardFiles: 524_288, hardCore: null, canRaise: true };

describe('describeLimitTooHigh', () => {
  test('open files above nr_open are refused whoever asks', () => {
    expect(describeLimitTooHigh(files('99999999'), ROOT)).toMatch(/^99999999 is above \/proc\/sys\/fs\/nr_open \(1048576\).*at most 1048576$/);
    expect(describeLimitTooHigh(files('99999999'), CONTAINER)).toMatch(/at most 20000$/);
  });
  test('with CAP_SYS_RESOURCE anything up to nr_open may be set', () => {
    expect(describeLimitTooHigh(files('1048576'), ROOT)).toBeNull();
    expect(describeLimitTooHigh(core('unlimited'), ROOT)).toBeNull();
  });
  test('without it, nothing above the inherited hard limit', () => {
    expect(describeLimitTooHigh(files('20000'), CONTAINER)).toBeNull();
    expect(describeLimitTooHigh(files('20001'), CONTAINER)).toMatch(/above the hard limit of open files php-fpm inherits \(20000\)/);
    expect(describeLimitTooHigh(core('unlimited'), CONTAINER)).toMatch(/above the hard limit of core file size php-fpm inherits \(0\)/);
    expect(describeLimitTooHigh(core('0'), CONTAINER)).toBeNull();
  });
  test('a value php-fpm does not read is left to its config test', () => {
    expect(describeLimitTooHigh(files('lots'), CONTAINER)).toBeNull();
    expect(describeLimitTooHigh(files('unlimited'), CONTAINER)).toBeNull();
  });
});
