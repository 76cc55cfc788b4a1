// The pure parts of the live slot switch (src/process/switch.ts) and the launch through the
// controller's symlink (src/model/invocation.ts); the switch itself is tested against the real
// php-fpm in test/integration/lossless.test.ts.
import { expect, test } from 'vitest';
import { buildLaunch, type UsableInstance } from '../../src/model/invocation.js';
import {
  changedLaunchKeys, describeRestartNeeded, isLaunchSettings, launchLinkPath, launchSettingsOf, pointLaunchLink,
} from '../../src/process/switch.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const BASE: UsableInstance = {
  name: 'web', variable: 'FPM_slot_web', line: 1, raw: [], slot: '8.2', config: '/etc/php/web.conf', binary: '/usr/sbin/php-fpm8.2',
  pidfile: '/run/php-fpm-multi/php-fpm/web.pid', prefix: null, phpIni: null, iniScanDir: null, env: {}, args: [], nice: null,
  oomScoreAdj: null, user: null, group: null, startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true, problems: [],
};

test('the launch runs php-fpm through the launch path (php-fpm re-executes argv[0] on reload), nice and oom_score_adj around it', () => {
  const link = launchLinkPath('/run/php-fpm-multi/php-fpm', 'web');
  expect(link).toBe('/run/php-fpm-multi/php-fpm/web.php-fpm');
  expect(buildLaunch(BASE, '/usr/bin', link).program).toBe(link);
  const wrapped = buildLaunch({ ...BASE, nice: 5 }, '/usr/bin', link);
  expect([wrapped.program, ...wrapped.args].slice(0, 4)).toEqual(['nice', '-n', '5', link]);
});

test('changedLaunchKeys names each key a reload cannot apply, by its declaration name', () => {
  const launched = launchSettingsOf(BASE);
  expect(changedLaunchKeys(launched, launchSettingsOf(BASE))).toEqual([]);
  const edited = launchSettingsOf({
    ...BASE, phpIni: '/etc/php/php.ini', iniScanDir: '/etc/php/conf.d', env: { TZ: 'UTC' }, args: ['-d', 'x=1'], nice: 5, oomScoreAdj: -10, prefix: '/srv',
  });
  expect(changedLaunchKeys(launched, edited)).toEqual(['prefix', 'php_ini', 'ini_scan_dir', 'env', 'args', 'nice', 'oom_score_adj']);
  // Same variables in another order are the same environment; a changed value is not.
  const env = launchSettingsOf({ ...BASE, env: { A: '1', B: '2' } });
  expect(changedLaunchKeys(env, launchSettingsOf({ ...BASE, env: { B: '2', A: '1' } }))).toEqual([]);
  expect(changedLaunchKeys(env, launchSettingsOf({ ...BASE, env: { B: '2', A: '3' } }))).toEqual(['env']);
  // Unknown (a record written before launches were recorded): nothing is claimed.
  expect(changedLaunchKeys(undefined, edited)).toEqual([]);
});

test('describeRestartNeeded says what to run, and nothing when nothing changed', () => {
  expect(describeRestartNeeded('web', [])).toBe('');
  expect(describeRestartNeeded('web', ['php_ini'])).toBe(
    "; php_ini changed since php-fpm was started: a reload keeps php-fpm's arguments and environment, so it takes effect only on php-fpm-multi restart web",
  );
  expect(describeRestartNeeded('web', ['env', 'nice'])).toContain('env, nice changed since php-fpm was started');
});

test('isLaunchSettings accepts what launchSettingsOf writes and refuses anything else', () => {
  const settings = launchSettingsOf({ ...BASE, env: { TZ: 'UTC' }, args: ['-d', 'x=1'], nice: 3 });
  expect(isLaunchSettings(JSON.parse(JSON.stringify(settings)))).toBe(true);
  expect(isLaunchSettings(null)).toBe(false);
  expect(isLaunchSettings({ ...settings, env: { TZ: 1 } })).toBe(false);
  expect(isLaunchSettings({ ...settings, args: '-d x=1' })).toBe(false);
  expect(isLaunchSettings({ ...settings, nice: '5' })).toBe(false);
});

test('pointLaunchLink replaces the symlink in the run directory', async () => {
  const system = new FakeSystem().addDirectories('/run/pfm');
  await pointLaunchLink(system, '/run/pfm', 'web', '/usr/sbin/php-fpm8.2');
  expect(await system.readlink('/run/pfm/web.php-fpm')).toBe('/usr/sbin/php-fpm8.2');
  await pointLaunchLink(system, '/run/pfm', 'web', '/opt/php83/sbin/php-fpm');
  expect(await system.readlink('/run/pfm/web.php-fpm')).toBe('/opt/php83/sbin/php-fpm');
});
