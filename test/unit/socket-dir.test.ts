import { describe, expect, test } from 'vitest';
import type { Declaration, ShellValue, Variable } from '../../src/declaration/declaration.js';
import { buildModel, type FileProbe } from '../../src/model/build.js';
import type { UsableInstance } from '../../src/model/invocation.js';
import {
  describeDotComponents, parseSocketDirMode, parseSocketDirOwner, planSocketDirectory, type SeenEntry, type SocketDirObservation,
} from '../../src/model/socket-dir.js';
import type { FpmPool } from '../../src/php-fpm/config/types.js';
import { ensureSocketDirectories, planSocketDirectoryOf } from '../../src/process/socket-dirs.js';
import type { RunResult } from '../../src/process/system.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const PROBE: FileProbe = { isFile: () => true, isExecutable: () => true, listDirectory: () => [] };

function build(variables: Record<string, string>): ReturnType<typeof buildModel> {
  const declaration: Declaration = {
    file: '/etc/conf.d/php-fpm',
    variables: Object.entries(variables).map(([name, value], index): Variable => ({ name, value: { kind: 'string', value } as ShellValue, line: index + 1, column: 1 })),
  };
  return buildModel(declaration, { env: { PATH: '/usr/bin' }, uid: 0, probe: PROBE });
}

describe('socket_dir_owner= and socket_dir_mode=', () => {
  test('USER and USER:GROUP are read', () => {
    expect(parseSocketDirOwner('www-data')).toEqual({ value: { user: 'www-data', group: null } });
    expect(parseSocketDirOwner('www-data:nginx')).toEqual({ value: { user: 'www-data', group: 'nginx' } });
  });

  test.each(['', ':www-data', 'a:b:c', 'www data', 'a:'])('owner %j is refused', (value) => {
    expect(parseSocketDirOwner(value)).toEqual({ problem: expect.stringContaining('must be USER or USER:GROUP') });
  });

  test('3 or 4 octal digits are a mode', () => {
    expect(parseSocketDirMode('0750')).toEqual({ value: 0o750 });
    expect(parseSocketDirMode('750')).toEqual({ value: 0o750 });
    expect(parseSocketDirMode('2750')).toEqual({ value: 0o2750 });
  });

  test.each(['75', '07500', '0758', 'rwx', '', '-750'])('mode %j is refused', (value) => {
    expect(parseSocketDirMode(value)).toEqual({ problem: 'must be 3 or 4 octal digits, as chmod takes them, e.g. 0750' });
  });

  test('FPM_defaults may set them; an instance overrides them; without them the instance has none', () => {
    const model = build({
      FPM_defaults: 'socket_dir_owner=www-data:www-data socket_dir_mode=0750',
      FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf',
      FPM_slot_b: 'slot=8.2 config=/etc/php/b.conf socket_dir_mode=0711',
    });
    expect(model.problems).toEqual([]);
    expect(model.instances.map((i) => [i.problems, i.socketDir])).toEqual([
      [[], { owner: { user: 'www-data', group: 'www-data' }, mode: 0o750 }],
      [[], { owner: { user: 'www-data', group: 'www-data' }, mode: 0o711 }],
    ]);
    expect(build({ FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf' }).instances[0]!.socketDir).toBeUndefined();
  });

  test.each(['0775', '0777', '0757', '0772', '1777', '7777'])('socket_dir_mode=%s lets group or others write: refused', (mode) => {
    const [instance] = build({ FPM_slot_a: `slot=8.2 config=/etc/php/a.conf socket_dir_mode=${mode}` }).instances;
    expect(instance!.problems).toEqual([expect.stringMatching(new RegExp(`^socket_dir_mode=${mode}: must not let group or others write \\(no 0020 or 0002 bit\\)`))]);
  });

  test.each(['0755', '0750', '0711', '0700', '755', '2750'])('socket_dir_mode=%s is accepted', (mode) => {
    expect(build({ FPM_slot_a: `slot=8.2 config=/etc/php/a.conf socket_dir_mode=${mode}` }).instances[0]!.problems).toEqual([]);
  });

  test('a bad value is a problem of the instance naming the key', () => {
    const [instance] = build({ FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf socket_dir_mode=888 socket_dir_owner=a:b:c' }).instances;
    expect(instance!.problems).toEqual([
      'socket_dir_mode=888: must be 3 or 4 octal digits, as chmod takes them, e.g. 0750',
      'socket_dir_owner=a:b:c: must be USER or USER:GROUP naming a user (and group) of this system, e.g. www-data:www-data',
    ]);
  });
});

describe('a listen path with "." or ".." components', () => {
  test.each(['/run/a/../b.sock', '/run/./a.sock', '/run/a/..', '/run/../run/a.sock'])('%s is refused', (listen) => {
    expect(describeDotComponents(listen)).toMatch(/^has a "\." or "\.\." component, which the kernel resolves after following the symlinks before it/);
  });

  test.each(['/run/php/a.sock', '/run/a..b/c.sock', '/run/.hidden/a.sock', '/run/...'])('%s is accepted', (listen) => {
    expect(describeDotComponents(listen)).toBeNull();
  });
});

const DIR: SeenEntry = { kind: 'directory', uid: 0, mode: 0o755 };

function observe(over: Partial<SocketDirObservation> & { dir: string; existing: string }): SocketDirObservation {
  const realExisting = over.realExisting ?? over.existing;
  const parts = realExisting.split('/').filter((p) => p !== '');
  return {
    existingStat: DIR,
    realExisting,
    chain: ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)].map((path) => ({ path, stat: DIR })),
    symlinks: [],
    ...over,
  };
}

describe('whether a missing socket directory is created (pure)', () => {
  test('an existing directory is used as it is', () => {
    expect(planSocketDirectory(observe({ dir: '/run/php', existing: '/run/php' }), [0], 'root')).toEqual({ kind: 'exists' });
  });

  test('every missing component under a root-only parent is created, top first', () => {
    expect(planSocketDirectory(observe({ dir: '/run/x/a', existing: '/run' }), [0], 'root')).toEqual({ kind: 'create', parent: '/run', create: ['/run/x', '/run/x/a'] });
  });

  test('under a root-owned symlink (/var/run -> /run) it is created at the real path', () => {
    const seen = observe({ dir: '/var/run/x', existing: '/var/run', realExisting: '/run', symlinks: [{ path: '/var/run', uid: 0 }] });
    expect(planSocketDirectory(seen, [0], 'root')).toEqual({ kind: 'create', parent: '/run', create: ['/run/x'] });
  });

  test('a symlink another user owns on the way is refused', () => {
    const seen = observe({ dir: '/srv/link/x', existing: '/srv/link', realExisting: '/run', symlinks: [{ path: '/srv/link', uid: 1000 }] });
    expect(planSocketDirectory(seen, [0], 'root')).toMatchObject({ kind: 'refuse', why: expect.stringContaining('/srv/link is a symlink owned by uid 1000') });
  });

  test.each([
    ['world-writable and sticky (/tmp)', 0o1777, 0],
    ['group-writable', 0o775, 0],
    ['owned by another user', 0o755, 1000],
  ])('a parent %s is refused', (_, mode, uid) => {
    const seen = observe({ dir: '/tmp/x/a', existing: '/tmp' });
    const chain = seen.chain.map((entry) => (entry.path === '/tmp' ? { path: '/tmp', stat: { kind: 'directory' as const, mode, uid } } : entry));
    const plan = planSocketDirectory({ ...seen, chain }, [0], 'root');
    expect(plan).toMatchObject({ kind: 'refuse', fix: expect.stringContaining('under a directory only root may write') });
    expect(plan.kind === 'refuse' && plan.why).toMatch(/^\/tmp is (writable by group or others|owned by uid 1000)/);
  });

  test('a sticky world-writable directory above a root-only parent is fine (others cannot rename ours)', () => {
    const seen = observe({ dir: '/tmp/root-only/a', existing: '/tmp/root-only' });
    const chain = seen.chain.map((entry) => (entry.path === '/tmp' ? { path: '/tmp', stat: { ...DIR, mode: 0o1777 } } : entry));
    expect(planSocketDirectory({ ...seen, chain }, [0], 'root')).toMatchObject({ kind: 'create', create: ['/tmp/root-only/a'] });
  });

  test('a file at the directory\'s own path cannot hold a socket', () => {
    const seen = observe({ dir: '/run/f', existing: '/run/f', existingStat: { kind: 'file', uid: 0, mode: 0o644 } });
    expect(planSocketDirectory(seen, [0], 'root')).toEqual({
      kind: 'refuse', why: '/run/f is not a directory', fix: 'remove or rename /run/f, or choose another listen path', present: true,
    });
  });

  test('a component that is a file is refused', () => {
    const seen = observe({ dir: '/run/f/a', existing: '/run/f', existingStat: { kind: 'file', uid: 0, mode: 0o644 } });
    expect(planSocketDirectory(seen, [0], 'root')).toEqual({
      kind: 'refuse', why: '/run/f is not a directory, so /run/f/a cannot be created below it', fix: 'remove or rename /run/f, or choose another listen path',
    });
  });
});

function pool(name: string, listen: string): FpmPool {
  return { name, listen, statusListen: null } as unknown as FpmPool;
}

function instanceWith(socketDir?: UsableInstance['socketDir']): UsableInstance {
  return { name: 'web', ...(socketDir === undefined ? {} : { socketDir }) } as unknown as UsableInstance;
}

function getent(system: FakeSystem, accounts: Record<string, string>): void {
  system.runHandler = (program, args): RunResult => {
    const line = program.endsWith('getent') ? accounts[`${args[0]}:${args[1]}`] : undefined;
    return { exitCode: line === undefined ? 2 : 0, signal: null, stdout: line === undefined ? '' : `${line}\n`, stderr: '', timedOut: false };
  };
}

describe('creating socket directories before a launch', () => {
  test('every missing component is made: parents root 0755, the socket directory with the keys', async () => {
    const system = new FakeSystem().addDirectory('/run');
    getent(system, { 'passwd:www-data': 'www-data:x:33:33::/var/www:/usr/sbin/nologin', 'group:www-data': 'www-data:x:33:' });
    const result = await ensureSocketDirectories(system, instanceWith({ owner: { user: 'www-data', group: 'www-data' }, mode: 0o750 }), [pool('www', '/run/x/a/b.sock')]);
    expect(result).toEqual({
      ok: true,
      created: [
        "created /run/x (root:root 0755) for pool 'www' of instance 'web'",
        "created /run/x/a (www-data:www-data 0750) for pool 'www' of instance 'web'",
      ],
    });
    expect(await system.lstat('/run/x')).toMatchObject({ kind: 'directory', uid: 0, mode: 0o755 });
    expect(await system.lstat('/run/x/a')).toMatchObject({ kind: 'directory', uid: 33, mode: 0o750 });
  });

  test('an existing directory is left as it is (never chowned or chmodded)', async () => {
    const system = new FakeSystem().addDirectory('/run').addDirectory('/run/php', { mode: 0o700, uid: 0 });
    getent(system, { 'passwd:www-data': 'www-data:x:33:33::/var/www:/usr/sbin/nologin' });
    const result = await ensureSocketDirectories(system, instanceWith({ owner: { user: 'www-data', group: null }, mode: 0o750 }), [pool('www', '/run/php/www.sock')]);
    expect(result).toEqual({ ok: true, created: [] });
    expect(await system.lstat('/run/php')).toMatchObject({ uid: 0, mode: 0o700 });
  });

  test('an unknown owner refuses before anything is created', async () => {
    const system = new FakeSystem().addDirectory('/run');
    getent(system, {});
    const result = await ensureSocketDirectories(system, instanceWith({ owner: { user: 'nobody-here', group: null }, mode: 0o750 }), [pool('www', '/run/x/b.sock')]);
    expect(result).toEqual({ ok: false, problem: expect.stringContaining("names user 'nobody-here', which this system does not know (getent passwd nobody-here finds nothing)") });
    await expect(system.lstat('/run/x')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('under a world-writable directory nothing is created', async () => {
    const system = new FakeSystem().addDirectory('/tmp', { mode: 0o1777 });
    const result = await ensureSocketDirectories(system, instanceWith(), [pool('www', '/tmp/x/b.sock')]);
    expect(result).toEqual({ ok: false, problem: expect.stringContaining('/tmp is writable by group or others (mode 01777)') });
    await expect(system.lstat('/tmp/x')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a symlink planted between the check and mkdir is neither followed nor used', async () => {
    const system = new FakeSystem().addDirectory('/run').addDirectory('/home').addDirectory('/home/eve', { uid: 1000 });
    const mkdir = system.mkdir.bind(system);
    system.mkdir = async (path, mode) => {
      if (path === '/run/x') system.addSymlink('/run/x', '/home/eve', { uid: 1000 });
      return mkdir(path, mode);
    };
    const result = await ensureSocketDirectories(system, instanceWith(), [pool('www', '/run/x/b.sock')]);
    expect(result).toEqual({ ok: false, problem: expect.stringContaining('/run/x appeared while it was being created, and is not a directory to use (it is a symlink owned by uid 1000)') });
    await expect(system.lstat('/home/eve/b.sock')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await system.lstat('/home/eve')).toMatchObject({ uid: 1000, mode: 0o755 });
  });

  test('the preflight only reads: planning creates nothing', async () => {
    const system = new FakeSystem().addDirectory('/run');
    expect(await planSocketDirectoryOf(system, '/run/x/a')).toEqual({ kind: 'create', parent: '/run', create: ['/run/x', '/run/x/a'] });
    await expect(system.lstat('/run/x')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
