// The php-fpm config parser read through System (src/php-fpm/config/load.ts): the controller's
// way to read a configuration, here against the fake System, so includes, globbing and refusals
// are checked without a file system. The parser's own rules are tested against php-fpm itself
// in test/integration/fpm-config.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildFpmEnvironment } from '../../src/model/invocation.js';
import type { Instance } from '../../src/model/instance.js';
import { readFpmConfig, systemConfigReader, type ConfigSystem } from '../../src/php-fpm/config/load.js';
import { FpmConfigError } from '../../src/php-fpm/config/types.js';
import { createRealSystem, FPM_CONFIG_MAX_BYTES, UnsafeFileError, type ReadLimits } from '../../src/process/system.js';
import { FakeSystem } from '../fixtures/fake-system.js';

function configTree(): FakeSystem {
  return new FakeSystem()
    .addDirectories('/etc/fpm/pool.d')
    .addDirectories('/etc/fpm/pool.d/sub.conf')
    .addFile('/etc/fpm/php-fpm.conf', '[global]\npid = run/fpm.pid\ninclude = /etc/fpm/pool.d/*.conf\n')
    .addFile('/etc/fpm/pool.d/b.conf', '[b]\npm = static\nlisten = ${SOCKETS}/b.sock\n')
    .addFile('/etc/fpm/pool.d/a.conf', '[a]\npm = static\nlisten = 9001\n')
    .addFile('/etc/fpm/pool.d/notes.txt', 'not a config');
}

describe('readFpmConfig through System', () => {
  test('reads the main file and its includes in byte order, skipping directories', async () => {
    const config = await readFpmConfig(configTree(), '/etc/fpm/php-fpm.conf', { env: { SOCKETS: '/run/php' }, prefix: '/srv/fpm' });
    expect(config.files).toEqual(['/etc/fpm/php-fpm.conf', '/etc/fpm/pool.d/a.conf', '/etc/fpm/pool.d/b.conf']);
    expect(config.pools.map((pool) => [pool.name, pool.listen])).toEqual([['a', '9001'], ['b', '/run/php/b.sock']]);
    expect(config.global.pid).toBe('/srv/fpm/run/fpm.pid');
    expect(config.global.includes).toEqual([
      { file: '/etc/fpm/php-fpm.conf', line: 3, pattern: '/etc/fpm/pool.d/*.conf', files: ['/etc/fpm/pool.d/a.conf', '/etc/fpm/pool.d/b.conf'] },
    ]);
  });

  test('${VAR} sees only the environment it is given: the one php-fpm is started with', async () => {
    const instance = { iniScanDir: '/etc/php/conf.d', env: { SOCKETS: '/run/declared' } } as unknown as Instance;
    const env = buildFpmEnvironment(instance, '/usr/bin:/bin');
    const config = await readFpmConfig(configTree(), '/etc/fpm/php-fpm.conf', { env });
    expect(config.pools.find((pool) => pool.name === 'b')?.listen).toBe('/run/declared/b.sock');
    const bare = await readFpmConfig(configTree(), '/etc/fpm/php-fpm.conf', {});
    expect(bare.pools.find((pool) => pool.name === 'b')?.listen).toBe('/b.sock');
  });

  test('every file is read with the config file limit', async () => {
    const system = configTree();
    const limits: Array<ReadLimits | undefined> = [];
    const spy: ConfigSystem = {
      readFile: (path, given) => {
        limits.push(given);
        return system.readFile(path);
      },
      readdir: (path) => system.readdir(path),
      stat: (path) => system.stat(path),
      lstat: (path) => system.lstat(path),
    };
    await readFpmConfig(spy, '/etc/fpm/php-fpm.conf', {});
    expect(limits).toEqual([1, 2, 3].map(() => ({ maxBytes: FPM_CONFIG_MAX_BYTES })));
  });

  test('an include whose directory cannot be listed is refused at its line', async () => {
    const system = new FakeSystem().addDirectories('/etc/fpm').addFile('/etc/fpm/php-fpm.conf', '[www]\ninclude = /etc/fpm/missing/*.conf\n');
    const error = await readFpmConfig(system, '/etc/fpm/php-fpm.conf', {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FpmConfigError);
    expect((error as FpmConfigError).message).toMatch(/^\/etc\/fpm\/php-fpm\.conf:2: php-fpm cannot expand 'include = \/etc\/fpm\/missing\/\*\.conf' \(cannot read directory '\/etc\/fpm\/missing': ENOENT/);
  });

  test("a file System refuses to read (a FIFO, too large) is named with the fix", async () => {
    const system = configTree();
    const refusing: ConfigSystem = {
      readFile: async (path) => {
        if (path.endsWith('b.conf')) throw new UnsafeFileError(path, 'not-regular', 'is a FIFO, not a regular file');
        return system.readFile(path);
      },
      readdir: (path) => system.readdir(path),
      stat: (path) => system.stat(path),
      lstat: (path) => system.lstat(path),
    };
    const error = await readFpmConfig(refusing, '/etc/fpm/php-fpm.conf', {}).catch((caught: unknown) => caught);
    expect((error as FpmConfigError).message).toBe(
      "/etc/fpm/php-fpm.conf:3: cannot read '/etc/fpm/pool.d/b.conf': is a FIFO, not a regular file. php-fpm-multi reads only regular files (a symlink to one is fine): remove it from the include pattern or replace it with a regular file.",
    );
  });

  test('the glob marks directories and follows the pattern only into directories', async () => {
    const reader = systemConfigReader(configTree());
    expect(await reader.glob('/etc/fpm/pool.d/*')).toEqual([
      '/etc/fpm/pool.d/a.conf', '/etc/fpm/pool.d/b.conf', '/etc/fpm/pool.d/notes.txt', '/etc/fpm/pool.d/sub.conf/',
    ]);
    expect(await reader.glob('/etc/*/pool.d/a.conf')).toEqual(['/etc/fpm/pool.d/a.conf']);
    expect(await reader.glob('/etc/fpm/pool.d/*/')).toEqual(['/etc/fpm/pool.d/sub.conf/']);
  });
});

describe('readFpmConfig through the real System', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fpm-config-system-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads includes from disk and refuses a FIFO among them without opening it for long', async () => {
    mkdirSync(join(dir, 'pool.d'));
    writeFileSync(join(dir, 'php-fpm.conf'), `[global]\ninclude = ${dir}/pool.d/*.conf\n`);
    writeFileSync(join(dir, 'pool.d/a.conf'), '[a]\npm = static\nlisten = 9002\n');
    const system = createRealSystem();
    const config = await readFpmConfig(system, join(dir, 'php-fpm.conf'), {});
    expect(config.pools.map((pool) => pool.listen)).toEqual(['9002']);
    execFileSync('mkfifo', [join(dir, 'pool.d/b.conf')]);
    const error = await readFpmConfig(system, join(dir, 'php-fpm.conf'), {}).catch((caught: unknown) => caught);
    expect((error as FpmConfigError).message).toBe(
      `${dir}/php-fpm.conf:2: cannot read '${dir}/pool.d/b.conf': is a FIFO, not a regular file. php-fpm-multi reads only regular files (a symlink to one is fine): remove it from the include pattern or replace it with a regular file.`,
    );
  });
});
