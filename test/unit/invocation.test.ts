import { expect, test } from 'vitest';
import { buildConfigTest, buildLaunch, DEFAULT_PATH, type UsableInstance } from '../../src/model/invocation.js';

const BASE: UsableInstance = {
  name: 'web', variable: 'FPM_slot_web', line: 1, raw: [], slot: '8.2', config: '/etc/php/web.conf', binary: '/usr/sbin/php-fpm8.2',
  pidfile: '/run/php-fpm-multi/php-fpm/web.pid', prefix: null, phpIni: null, iniScanDir: null, env: {}, args: [], nice: null,
  oomScoreAdj: null, user: null, group: null, startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true, problems: [],
};

test('the launch is forced into the background with the config and the pidfile', () => {
  expect(buildLaunch(BASE, '/usr/bin:/bin')).toEqual({
    program: '/usr/sbin/php-fpm8.2',
    args: ['--fpm-config', '/etc/php/web.conf', '--pid', '/run/php-fpm-multi/php-fpm/web.pid', '--daemonize'],
    env: { PATH: '/usr/bin:/bin' },
  });
});

test('the config test uses exactly the flags of the launch', () => {
  const instance = { ...BASE, prefix: '/srv', phpIni: '/etc/php/php.ini', args: ['-d', 'memory_limit=1G'] };
  expect(buildConfigTest(instance, undefined)).toEqual({
    program: '/usr/sbin/php-fpm8.2',
    args: ['--test', '--fpm-config', '/etc/php/web.conf', '--prefix', '/srv', '--php-ini', '/etc/php/php.ini', '-d', 'memory_limit=1G'],
    env: { PATH: DEFAULT_PATH },
  });
  expect(buildLaunch(instance, undefined).args).toEqual([
    '--fpm-config', '/etc/php/web.conf', '--prefix', '/srv', '--php-ini', '/etc/php/php.ini', '-d', 'memory_limit=1G',
    '--pid', '/run/php-fpm-multi/php-fpm/web.pid', '--daemonize',
  ]);
});

test('php-fpm gets a clean environment: PATH, ini_scan_dir and the instance env only', () => {
  const instance = { ...BASE, iniScanDir: '/etc/php/extra', env: { TZ: 'UTC', PATH: '/opt/bin' } };
  expect(buildLaunch(instance, '/usr/bin').env).toEqual({ PATH: '/opt/bin', PHP_INI_SCAN_DIR: '/etc/php/extra', TZ: 'UTC' });
});

test('nice and oom_score_adj wrap the launch so the master and its workers inherit them', () => {
  const launch = buildLaunch({ ...BASE, nice: 5, oomScoreAdj: -100 }, '/usr/bin');
  expect([launch.program, ...launch.args]).toEqual([
    '/bin/sh', '-c', 'echo "$1" >/proc/self/oom_score_adj && shift && exec "$@"', 'php-fpm-multi', '-100',
    'nice', '-n', '5', '/usr/sbin/php-fpm8.2', '--fpm-config', '/etc/php/web.conf', '--pid', '/run/php-fpm-multi/php-fpm/web.pid', '--daemonize',
  ]);
});
