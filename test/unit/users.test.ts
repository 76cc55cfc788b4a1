// user= and group= (issue 14, item 3): the keys (pure), the launch and config test run through
// setpriv, the pidfile a user may write (believed only as a claim), and the account lookup.
import { describe, expect, test } from 'vitest';
import type { Declaration, Variable } from '../../src/declaration/declaration.js';
import { buildModel, type FileProbe } from '../../src/model/build.js';
import { buildConfigTest, buildLaunch, type RunAs, type UsableInstance } from '../../src/model/invocation.js';
import { testConfig } from '../../src/process/control.js';
import { changedLaunchKeys, launchSettingsOf } from '../../src/process/switch.js';
import { prepareAccount, resolveAccount, UNRESOLVED_UID, uidOf } from '../../src/process/account.js';
import { checkPidfileTrust, readTrustedPidfile, UntrustedPathError } from '../../src/process/pidfile.js';
import { SpawnError, type RunOptions, type RunResult } from '../../src/process/system.js';
import { checkInstance } from '../../src/process/checks.js';
import { createProbes } from '../../src/process/probes.js';
import { FpmMultiError } from '../../src/errors.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const PROBE: FileProbe = { isFile: () => true, isExecutable: (f) => f === '/usr/sbin/php-fpm8.2', listDirectory: () => [] };

function model(...words: string[]): ReturnType<typeof buildModel> {
  const variable: Variable = { name: 'FPM_slot_web', value: { kind: 'array', elements: ['slot=8.2', 'config=/etc/php/web.conf', ...words] }, line: 1, column: 1 };
  const declaration: Declaration = { file: '/etc/conf.d/php-fpm', variables: [variable] };
  return buildModel(declaration, { env: { PATH: '/usr/sbin' }, uid: 0, probe: PROBE });
}

describe('the user and group keys', () => {
  test('are read, and without them php-fpm runs as the controller', () => {
    expect(model('user=www-data', 'group=web_1').instances[0]).toMatchObject({ user: 'www-data', group: 'web_1', problems: [] });
    expect(model().instances[0]).toMatchObject({ user: null, group: null, pidfile: '/run/php-fpm-multi/php-fpm/web.pid' });
  });

  test('with user=, the default pidfile is in a directory of its own, <run dir>/<name>.d/', () => {
    expect(model('user=www-data').instances[0]!.pidfile).toBe('/run/php-fpm-multi/php-fpm/web.d/web.pid');
    expect(model('user=www-data', 'pidfile=/run/web/web.pid').instances[0]!.pidfile).toBe('/run/web/web.pid');
  });

  test('socket directories start creates are the user\'s (and group=\'s) unless socket_dir_owner= says otherwise', () => {
    expect(model().instances[0]!.socketDir).toBeUndefined();
    expect(model('user=www-data').instances[0]!.socketDir).toEqual({ owner: { user: 'www-data', group: null }, mode: 0o755 });
    expect(model('user=www-data', 'group=web_1').instances[0]!.socketDir).toEqual({ owner: { user: 'www-data', group: 'web_1' }, mode: 0o755 });
    expect(model('user=www-data', 'socket_dir_owner=root:www-data', 'socket_dir_mode=0750').instances[0]!.socketDir)
      .toEqual({ owner: { user: 'root', group: 'www-data' }, mode: 0o750 });
  });

  test.each(['1abc', 'a b', '', '-x', 'root:root', 'a'.repeat(33)])('refuse the name %j', (name) => {
    const [problem] = model(`user=${name}`).instances[0]!.problems;
    expect(problem).toMatch(new RegExp(`^user=.*: must be a user or group name`));
  });

  test('group= without user= is refused, with the fix', () => {
    expect(model('group=www-data').instances[0]!.problems).toEqual([
      'group=www-data needs user=: php-fpm-multi changes the group only together with the user; add user=NAME',
    ]);
  });

  test('may be defaults', () => {
    const variables: Variable[] = [
      { name: 'FPM_defaults', value: { kind: 'string', value: 'user=www-data' }, line: 1, column: 1 },
      { name: 'FPM_slot_a', value: { kind: 'string', value: 'slot=8.2 config=/etc/a.conf' }, line: 2, column: 1 },
    ];
    const built = buildModel({ file: '/etc/conf.d/php-fpm', variables }, { env: {}, uid: 0, probe: PROBE });
    expect(built.problems).toEqual([]);
    expect(built.instances[0]).toMatchObject({ user: 'www-data', group: null, problems: [] });
  });
});

const BASE: UsableInstance = {
  name: 'web', variable: 'FPM_slot_web', line: 1, raw: [], slot: '8.2', config: '/etc/php/web.conf', binary: '/usr/sbin/php-fpm8.2',
  pidfile: '/run/php-fpm-multi/php-fpm/web.d/web.pid', prefix: null, phpIni: null, iniScanDir: null, env: {}, args: [], nice: null,
  oomScoreAdj: null, user: 'www-data', group: null, startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true, problems: [],
};
const WWW: RunAs = { user: 'www-data', uid: 33, group: 'www-data', gid: 33 };

describe('the launch as another user', () => {
  test('goes through setpriv (groups initialised) innermost, so nice and oom_score_adj are applied as root', () => {
    const launch = buildLaunch({ ...BASE, nice: -5, oomScoreAdj: -100 }, '/usr/bin', '/run/php-fpm-multi/php-fpm/web.launch', WWW);
    expect([launch.program, ...launch.args]).toEqual([
      '/bin/sh', '-c', 'echo "$1" >/proc/self/oom_score_adj && shift && exec "$@"', 'php-fpm-multi', '-100',
      'nice', '-n', '-5',
      'setpriv', '--reuid=33', '--regid=33', '--init-groups', '--',
      '/run/php-fpm-multi/php-fpm/web.launch', '--fpm-config', '/etc/php/web.conf', '--pid', '/run/php-fpm-multi/php-fpm/web.d/web.pid', '--daemonize',
    ]);
  });

  test('the config test runs as that user too, with the same flags', () => {
    const test = buildConfigTest(BASE, '/usr/bin', WWW);
    expect([test.program, ...test.args]).toEqual([
      'setpriv', '--reuid=33', '--regid=33', '--init-groups', '--', '/usr/sbin/php-fpm8.2', '--test', '--fpm-config', '/etc/php/web.conf',
    ]);
    expect(test.env).toEqual({ PATH: '/usr/bin' });
  });

  test('without a user to switch to, nothing changes', () => {
    expect(buildLaunch(BASE, '/usr/bin').program).toBe('/usr/sbin/php-fpm8.2');
    expect(buildConfigTest(BASE, '/usr/bin').program).toBe('/usr/sbin/php-fpm8.2');
  });
});

/** getent of a system with www-data (33) and web (1001, primary group 1001, also in www-data). */
function getent(program: string, args: readonly string[], _options: RunOptions): RunResult {
  const entries: Record<string, string> = {
    'passwd www-data': 'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin',
    'passwd web': 'web:x:1001:1001::/home/web:/bin/sh',
    'group 33': 'www-data:x:33:web', 'group www-data': 'www-data:x:33:web', 'group 1001': 'web:x:1001:',
  };
  const found = program.endsWith('getent') ? entries[args.join(' ')] : undefined;
  return { exitCode: found === undefined ? 2 : 0, signal: null, stdout: found === undefined ? '' : `${found}\n`, stderr: '', timedOut: false };
}

function systemAs(uid: number): FakeSystem {
  const system = new FakeSystem();
  system.uid = uid;
  system.runHandler = getent;
  return system;
}

describe('the account', () => {
  test('is looked up by name, the group defaulting to the primary one; root switches to it', async () => {
    expect(await resolveAccount(systemAs(0), { user: 'web', group: null })).toEqual({
      kind: 'resolved', runAs: { user: 'web', uid: 1001, group: 'web', gid: 1001 }, switchUser: true,
    });
    expect(await resolveAccount(systemAs(0), { user: 'web', group: 'www-data' })).toMatchObject({ runAs: { gid: 33, group: 'www-data' } });
  });

  test('an unknown user or group is a problem with the fix, and no process can be taken for its master', async () => {
    const system = systemAs(0);
    const unknown = await resolveAccount(system, { user: 'nobody_here', group: null });
    expect(unknown).toEqual({
      kind: 'problem', needsRoot: false,
      problem: 'user=nobody_here: no such user (getent passwd nobody_here finds nothing): create it (useradd --system nobody_here) or fix user=',
    });
    expect(uidOf(system, unknown)).toBe(UNRESOLVED_UID);
    expect(await resolveAccount(system, { user: 'web', group: 'nogroup_here' })).toMatchObject({ kind: 'problem', problem: expect.stringContaining('group=nogroup_here: no such group') });
  });

  test('an ordinary controller may name itself, never another user or group: that needs root', async () => {
    expect(await resolveAccount(systemAs(1001), { user: 'web', group: null })).toMatchObject({ kind: 'resolved', switchUser: false });
    expect(await resolveAccount(systemAs(1001), { user: 'www-data', group: null })).toMatchObject({
      kind: 'problem', needsRoot: true, problem: expect.stringContaining('only root can run php-fpm as another user'),
    });
    expect(await resolveAccount(systemAs(1001), { user: 'web', group: 'www-data' })).toMatchObject({ kind: 'problem', needsRoot: true });
  });

  test('the pidfile directory <run dir>/<name>.d is made and given to the user', async () => {
    const system = systemAs(0).addDirectories('/run/php-fpm-multi/php-fpm');
    const instance = { ...BASE, user: 'web' };
    expect(await prepareAccount(system, '/run/php-fpm-multi/php-fpm', instance)).toEqual({ runAs: { user: 'web', uid: 1001, group: 'web', gid: 1001 } });
    expect(await system.lstat('/run/php-fpm-multi/php-fpm/web.d')).toMatchObject({ kind: 'directory', uid: 1001, mode: 0o755 });
  });
});

describe("a pidfile the instance's user may write", () => {
  const DIR = '/run/php-fpm-multi/php-fpm/web.d';
  const PIDFILE = `${DIR}/web.pid`;
  function system(dirOwner = 1001, fileOwner = 1001, dirMode = 0o755): FakeSystem {
    return new FakeSystem().addDirectories('/run/php-fpm-multi/php-fpm').addDirectory(DIR, { uid: dirOwner, mode: dirMode })
      .addFile(PIDFILE, '4321', { uid: fileOwner });
  }

  test('is read as that user\'s claim only when that user is the expected owner', async () => {
    expect(await readTrustedPidfile(system(), PIDFILE, 1001)).toBe(4321);
    await expect(readTrustedPidfile(system(), PIDFILE)).rejects.toBeInstanceOf(UntrustedPathError);
    await expect(readTrustedPidfile(system(), PIDFILE, 0)).rejects.toBeInstanceOf(UntrustedPathError);
    await expect(readTrustedPidfile(system(), PIDFILE, 1002)).rejects.toBeInstanceOf(UntrustedPathError);
  });

  test('not one another user owns, nor one in a directory others can write, nor a symlink', async () => {
    await expect(checkPidfileTrust(system(1001, 1002), PIDFILE, 1001)).rejects.toThrow(/is owned by uid 1002/);
    await expect(checkPidfileTrust(system(1001, 1001, 0o775), PIDFILE, 1001)).rejects.toThrow(/web\.d is owned by uid 1001 with mode 0775/);
    const linked = new FakeSystem().addDirectories('/run/php-fpm-multi/php-fpm').addDirectory(DIR, { uid: 1001 }).addSymlink(PIDFILE, '/etc/shadow', { uid: 1001 });
    await expect(checkPidfileTrust(linked, PIDFILE, 1001)).rejects.toThrow(/is a symlink/);
  });

  test('the directories above it stay root\'s', async () => {
    const above = new FakeSystem().addDirectories('/run/php-fpm-multi').addDirectory('/run/php-fpm-multi/php-fpm', { uid: 1001 })
      .addDirectory(DIR, { uid: 1001 }).addFile(PIDFILE, '4321', { uid: 1001 });
    await expect(checkPidfileTrust(above, PIDFILE, 1001)).rejects.toThrow(/php-fpm is owned by uid 1001/);
  });
});

describe("php-fpm's config test as the user", () => {
  test('runs through setpriv, and an error_log the user cannot open is named with the fix', async () => {
    const system = systemAs(0);
    const runs: string[][] = [];
    system.runHandler = (program, args, options) => {
      if (program.endsWith('getent')) return getent(program, args, options);
      runs.push([program, ...args]);
      return { exitCode: 78, signal: null, stdout: '', stderr: '[07-Dec-2026 04:39:03] ERROR: failed to open error_log (/var/log/php8.2-fpm.log): Permission denied (13)\n', timedOut: false };
    };
    const outcome = await testConfig({ system, path: '/usr/bin' }, { ...BASE, user: 'web' });
    expect(runs).toEqual([['setpriv', '--reuid=1001', '--regid=1001', '--init-groups', '--', '/usr/sbin/php-fpm8.2', '--test', '--fpm-config', '/etc/php/web.conf']]);
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toContain('configuration test failed: /usr/sbin/php-fpm8.2 --test (as user web) exited with status 78');
    expect(outcome.message).toContain(
      "php-fpm runs as user web, who cannot write its error_log /var/log/php8.2-fpm.log: set error_log in the config to a file of that user's, or give it the file: touch /var/log/php8.2-fpm.log && chown web:web /var/log/php8.2-fpm.log",
    );
  });
});

describe('a reload after user= or group= changed', () => {
  test('names them: a re-executed master keeps its account, only a restart changes it', () => {
    const launched = launchSettingsOf({ ...BASE, user: 'web' });
    expect(changedLaunchKeys(launched, launchSettingsOf({ ...BASE, user: 'www-data', group: 'www-data' }))).toEqual(['user', 'group']);
    expect(changedLaunchKeys(launched, launchSettingsOf({ ...BASE, user: 'web' }))).toEqual([]);
    // A record written before the keys existed names none.
    const { user: _user, group: _group, ...older } = launched;
    expect(changedLaunchKeys(older, launchSettingsOf({ ...BASE, user: 'web' }))).toEqual([]);
  });
});

test('an account is looked up again after a while: a long-running supervisor sees a user created since', async () => {
  const system = systemAs(0);
  let created = false;
  system.runHandler = (program, args, options) => {
    if (args.join(' ') === 'passwd later') {
      const entry = 'later:x:1002:1002::/:/bin/sh';
      return { exitCode: created ? 0 : 2, signal: null, stdout: created ? `${entry}\n` : '', stderr: '', timedOut: false };
    }
    if (args.join(' ') === 'group 1002') return { exitCode: 0, signal: null, stdout: 'later:x:1002:\n', stderr: '', timedOut: false };
    return getent(program, args, options);
  };
  expect(await resolveAccount(system, { user: 'later', group: null })).toMatchObject({ kind: 'problem' });
  created = true;
  expect(await resolveAccount(system, { user: 'later', group: null })).toMatchObject({ kind: 'problem' }); // one command asks once
  system.nowMs += 60_000;
  expect(await resolveAccount(system, { user: 'later', group: null })).toMatchObject({ kind: 'resolved', runAs: { uid: 1002 } });
});

test('check says so when setpriv, which user= needs, cannot be run', async () => {
  const system = systemAs(0).addDirectories('/run/php-fpm-multi/php-fpm').addDirectories('/etc/php');
  system.runHandler = (program, args, options) => {
    if (program === 'setpriv') throw new SpawnError('setpriv', 'spawn setpriv ENOENT');
    return getent(program, args, options);
  };
  const readFpmConfig = async () => { throw new FpmMultiError('not read in this test'); };
  const { problems } = await checkInstance(createProbes(system, '/run/php-fpm-multi/php-fpm', '/usr/bin'), { readFpmConfig }, { ...BASE, user: 'web' });
  expect(problems).toContain('user=web needs setpriv, which php-fpm-multi runs php-fpm through to switch to that user, and it cannot be run (cannot run setpriv: spawn setpriv ENOENT. Check that the program is installed and executable.): install util-linux (it provides setpriv)');
});
