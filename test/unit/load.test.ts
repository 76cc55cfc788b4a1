// Unit tests of the model's edge (src/model/load.ts) over the fake System: the declaration is read
// and the files it names are looked at through System.sync, so a fake file tree decides what the
// pure build sees (an executable php-fpm, a config file, a missing one).
import { describe, expect, test } from 'vitest';
import { NotConfiguredError } from '../../src/errors.js';
import { loadModel, probeFilesOf } from '../../src/model/load.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const CONF = '/etc/conf.d/php-fpm';

function systemWith(declaration: string): FakeSystem {
  return new FakeSystem()
    .addDirectories('/etc/conf.d')
    .addFile(CONF, declaration)
    .addDirectories('/usr/sbin')
    .addFile('/usr/sbin/php-fpm8.2', '', { mode: 0o755 })
    .addDirectories('/etc/php/8.2/fpm')
    .addFile('/etc/php/8.2/fpm/web.conf', '[global]\n');
}

describe('probeFilesOf: the FileProbe over a System', () => {
  const system = systemWith('');

  test('an executable regular file is executable; a plain file and a directory are not', () => {
    const probe = probeFilesOf(system);
    expect(probe.isExecutable('/usr/sbin/php-fpm8.2')).toBe(true);
    expect(probe.isExecutable('/etc/php/8.2/fpm/web.conf')).toBe(false);
    expect(probe.isExecutable('/usr/sbin')).toBe(false);
    expect(probe.isFile('/etc/php/8.2/fpm/web.conf')).toBe(true);
    expect(probe.isFile('/etc/php/8.2/fpm')).toBe(false);
  });

  test('what cannot be looked at is a plain no, never an exception', () => {
    const probe = probeFilesOf(system);
    expect(probe.isFile('/nonexistent/file')).toBe(false);
    expect(probe.isExecutable('/nonexistent/php-fpm')).toBe(false);
    expect(probe.listDirectory('/nonexistent')).toEqual([]);
    expect(probe.listDirectory('/usr/sbin')).toEqual(['php-fpm8.2']);
  });
});

describe('loadModel over a fake System', () => {
  test('reads the declaration and resolves the binary and config in the fake tree', () => {
    const system = systemWith('FPM_slot_web=(binary=/usr/sbin/php-fpm8.2 config=/etc/php/8.2/fpm/web.conf)\n');
    const model = loadModel(system, CONF, { PATH: '/usr/bin:/bin' });
    expect(model.instances.map((instance) => [instance.name, instance.binary, instance.config, instance.problems])).toEqual([
      ['web', '/usr/sbin/php-fpm8.2', '/etc/php/8.2/fpm/web.conf', []],
    ]);
    expect(model.runDir).toBe('/run/php-fpm-multi/php-fpm');
  });

  test('a config missing from the tree is the instance\'s problem', () => {
    const system = systemWith('FPM_slot_web=(binary=/usr/sbin/php-fpm8.2 config=/etc/php/8.2/fpm/gone.conf)\n');
    const [instance] = loadModel(system, CONF, { PATH: '/usr/bin:/bin' }).instances;
    expect(instance?.problems.join('\n')).toContain('/etc/php/8.2/fpm/gone.conf');
  });

  test('a missing declaration file is refused as not configured', () => {
    expect(() => loadModel(new FakeSystem(), CONF, {})).toThrow(NotConfiguredError);
    expect(() => loadModel(new FakeSystem(), CONF, {})).toThrow(`${CONF}: no such file`);
  });
});
