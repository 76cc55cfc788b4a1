// Tryout 2, finding 4: which rlimit_files / rlimit_core php-fpm's setrlimit would refuse (EPERM).
import { describe, expect, test } from 'vitest';
import { describeLimitTooHigh, type RlimitBounds } from '../../src/process/probes.js';
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

describe('the config reader exposes the accounts and rlimits php-fpm checks only at start', () => {
  test('ACL lists split at commas as strtok does (spaces kept, empty items skipped); rlimits of [global] and pools', async () => {
    const { readFpmConfig } = await import('../../src/php-fpm/config/load.js');
    const { FakeSystem } = await import('../fixtures/fake-system.js');
    const system = new FakeSystem().addDirectories('/etc').addFile(
      '/etc/fpm.conf',
      '[global]\nrlimit_files = 4096\n[www]\nlisten = /run/a.sock\npm = static\nuser = 33\nlisten.acl_users = a, b,,c\nlisten.acl_groups = g\nrlimit_core = unlimited\n',
    );
    const config = await readFpmConfig(system, '/etc/fpm.conf', { env: {} });
    expect(config.global.rlimits).toEqual([{ key: 'rlimit_files', value: '4096', at: { file: '/etc/fpm.conf', line: 2 } }]);
    const [pool] = config.pools;
    expect(pool!.accounts!.map((a) => [a.key, a.kind, a.name, a.numericAllowed])).toEqual([
      ['user', 'user', '33', true], ['listen.acl_users', 'user', 'a', false], ['listen.acl_users', 'user', ' b', false],
      ['listen.acl_users', 'user', 'c', false], ['listen.acl_groups', 'group', 'g', false],
    ]);
    expect(pool!.rlimits).toEqual([{ key: 'rlimit_core', value: 'unlimited', at: { file: '/etc/fpm.conf', line: 9 } }]);
  });
});
