// `php-fpm-multi discover` over fake file trees of the four distribution layouts (Debian/Ubuntu,
// Gentoo, Alpine, Remi's collections): which configs are declared and with which binary, what
// each instance's comment says (version, pools, the pid line and its fix), the form /bin/sh can
// read, and that the output reads back through the repo's own reader and model as declared.
import { describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { FIX_PREFIX, formatPidFix, listDiscoveryCandidates, nameInstances } from '../../src/model/discovery.js';
import { loadModel } from '../../src/model/load.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const EXECUTABLE = { mode: 0o755 };

function fpmVersion(version: string): string {
  return `PHP ${version} (fpm-fcgi) (built: Nov 18 2026 20:02:04)\nCopyright (c) The PHP Group\nZend Engine v4.2.36\n`;
}

/** A machine: /bin/sh is `shell`, and `-v` of each binary says the version given. */
function makeMachine(shell: 'dash' | 'bash', versions: Record<string, string>): FakeSystem {
  const system = new FakeSystem();
  system.addDirectories('/usr/bin').addFile(`/usr/bin/${shell}`, '', EXECUTABLE).addDirectories('/bin').addSymlink('/bin/sh', `/usr/bin/${shell}`);
  system.runHandler = (program, args) => {
    const version = versions[program];
    if (args[0] === '-v' && version !== undefined) return { exitCode: 0, signal: null, stdout: fpmVersion(version), stderr: '', timedOut: false };
    return { exitCode: 127, signal: null, stdout: '', stderr: `unexpected ${program} ${args.join(' ')}`, timedOut: false };
  };
  return system;
}

function addDebian(system: FakeSystem, version: string, { pid = true, runPhp = true } = {}): void {
  const dir = `/etc/php/${version}/fpm`;
  system.addDirectories(`${dir}/pool.d`).addDirectories(`/etc/php/${version}/cli`).addFile(`/etc/php/${version}/cli/php.ini`, '');
  system.addFile(`${dir}/php-fpm.conf`, `[global]\n${pid ? `pid = /run/php/php${version}-fpm.pid\n` : ''}error_log = /var/log/php${version}-fpm.log\ninclude=${dir}/pool.d/*.conf\n`);
  system.addFile(`${dir}/pool.d/www.conf`, `[www]\nuser = www-data\nlisten = /run/php/php${version}-fpm.sock\npm = dynamic\npm.max_children = 5\n`);
  system.addDirectories('/usr/sbin').addFile(`/usr/sbin/php-fpm${version}`, '', EXECUTABLE);
  if (runPhp) system.addDirectories('/run/php');
}

function addGentoo(system: FakeSystem, version: string, libdir: 'lib64' | 'lib', eprefix = ''): void {
  const dir = `${eprefix}/etc/php/fpm-php${version}`;
  system.addDirectories(`${dir}/fpm.d`).addDirectories(`${eprefix}/etc/php/cli-php${version}`);
  system.addFile(`${dir}/php-fpm.conf`, `[global]\nerror_log = ${eprefix}/var/log/php-fpm.log\ninclude=${dir}/fpm.d/*.conf\n`);
  system.addFile(`${dir}/fpm.d/www.conf`, `[www]\nlisten = 127.0.0.1:90${version.replace('.', '')}\npm = static\npm.max_children = 2\n`);
  system.addDirectories(`${eprefix}/usr/${libdir}/php${version}/bin`).addFile(`${eprefix}/usr/${libdir}/php${version}/bin/php-fpm`, '', EXECUTABLE);
}

function addAlpine(system: FakeSystem, joined: string): void {
  system.addDirectories(`/etc/php${joined}/php-fpm.d`);
  system.addFile(`/etc/php${joined}/php-fpm.conf`, `[global]\n;pid = run/php-fpm${joined}.pid\npid = /run/php-fpm${joined}.pid\ninclude=/etc/php${joined}/php-fpm.d/*.conf\n`);
  system.addFile(`/etc/php${joined}/php-fpm.d/www.conf`, '[www]\nlisten = 127.0.0.1:9000\n[api]\nlisten = /run/php-fpm-api.sock\npm.status_listen = 127.0.0.1:9100\n');
  system.addDirectories('/usr/sbin').addFile(`/usr/sbin/php-fpm${joined}`, '', EXECUTABLE);
}

function addRemi(system: FakeSystem, joined: string): void {
  system.addDirectories(`/etc/opt/remi/php${joined}/php-fpm.d`);
  system.addFile(`/etc/opt/remi/php${joined}/php-fpm.conf`, `[global]\npid = /var/opt/remi/php${joined}/run/php-fpm/php-fpm.pid\ninclude=/etc/opt/remi/php${joined}/php-fpm.d/*.conf\n`);
  system.addFile(`/etc/opt/remi/php${joined}/php-fpm.d/www.conf`, `[www]\nlisten = /var/opt/remi/php${joined}/run/php-fpm/www.sock\n`);
  system.addDirectories(`/var/opt/remi/php${joined}/run/php-fpm`);
  system.addDirectories(`/opt/remi/php${joined}/root/usr/sbin`).addFile(`/opt/remi/php${joined}/root/usr/sbin/php-fpm`, '', EXECUTABLE);
}

async function discover(system: FakeSystem, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['discover', ...args], { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, system });
  return { code, stdout, stderr };
}

/** The output written where the admin would put it, read by the repo's reader and model. */
function readBack(system: FakeSystem, output: string, env: Record<string, string> = {}): Array<{ name: string; slot: string | null; binary: string | null; config: string | null; problems: string[] }> {
  system.addDirectories('/etc/conf.d').addFile('/etc/conf.d/php-fpm', output);
  const model = loadModel(system, '/etc/conf.d/php-fpm', env);
  expect(model.problems).toEqual([]);
  return model.instances.map(({ name, slot, binary, config, problems }) => ({ name, slot, binary, config, problems }));
}

describe('discover on each distribution', () => {
  test('Debian: the fpm config of each version with a php-fpm binary, its pool, the pid line and its fix', async () => {
    const system = makeMachine('dash', { '/usr/sbin/php-fpm8.2': '8.2.36' });
    addDebian(system, '8.2');
    // 7.4's config kept after its package was removed: named, not declared.
    system.addDirectories('/etc/php/7.4/fpm').addFile('/etc/php/7.4/fpm/php-fpm.conf', '[global]\n');
    const { code, stdout, stderr } = await discover(system);
    expect(code).toBe(0);
    expect(stdout).toContain('# php8.2 (Debian/Ubuntu): /usr/sbin/php-fpm8.2\n');
    expect(stdout).toContain('#   version: PHP 8.2.36 (fpm-fcgi) (built: Nov 18 2026 20:02:04)\n');
    expect(stdout).toContain('#   pool www: listen /run/php/php8.2-fpm.sock (/etc/php/8.2/fpm/pool.d/www.conf:3)\n');
    expect(stdout).toContain('#   pid: /etc/php/8.2/fpm/php-fpm.conf:2 sets "pid = /run/php/php8.2-fpm.pid"');
    expect(stdout).toContain("#   fix: sed -i '2s/^[[:space:]]*pid[[:space:]]*=/;&/' /etc/php/8.2/fpm/php-fpm.conf\n");
    expect(stdout).toContain('\nFPM_slot_php82="slot=php8.2 config=/etc/php/8.2/fpm/php-fpm.conf"\n');
    expect(stdout).toMatch(/# not declared: \/etc\/php\/7\.4\/fpm\/php-fpm\.conf \(php7\.4\) has no php-fpm: none of \/usr\/sbin\/php-fpm7\.4/);
    expect(stdout).not.toContain('cli');
    expect(stderr).toBe('php-fpm-multi: warning: the output has "fix:" lines for 1 of 1 declared instance: run them, then php-fpm-multi check\n');
    expect(readBack(system, stdout)).toEqual([
      { name: 'php82', slot: 'php8.2', binary: '/usr/sbin/php-fpm8.2', config: '/etc/php/8.2/fpm/php-fpm.conf', problems: [] },
    ]);
  });

  test('Debian after a reboot: the missing socket directory is named as one start creates', async () => {
    const system = makeMachine('dash', { '/usr/sbin/php-fpm8.2': '8.2.36' });
    addDebian(system, '8.2', { runPhp: false });
    const { stdout } = await discover(system);
    expect(stdout).toContain('#   /run/php (a listen socket\'s directory) does not exist: start creates it, root-owned 0755 (keep it root\'s: the pool\'s listen.owner, listen.group and listen.mode give the web server the socket)\n');
    expect(stdout).not.toContain('fix: mkdir');
  });

  test('Gentoo: /etc/php/fpm-php<v>, the slotted binary in lib64 or lib, no pid line: nothing to fix', async () => {
    const system = makeMachine('bash', { '/usr/lib64/php8.1/bin/php-fpm': '8.1.31', '/usr/lib/php8.3/bin/php-fpm': '8.3.14' });
    addGentoo(system, '8.1', 'lib64');
    addGentoo(system, '8.3', 'lib');
    const { code, stdout, stderr } = await discover(system);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain('# /bin/sh is /usr/bin/bash: the array form');
    expect(stdout).toContain('# php8.1 (Gentoo): /usr/lib64/php8.1/bin/php-fpm\n#   version: PHP 8.1.31 (fpm-fcgi)');
    expect(stdout).toContain('#   pool www: listen 127.0.0.1:9081 (/etc/php/fpm-php8.1/fpm.d/www.conf:2)\n#   pid: no "pid =" line: nothing to fix\n');
    expect(stdout).toContain('\nFPM_slot_php81=( slot=php8.1 config=/etc/php/fpm-php8.1/php-fpm.conf )\n');
    expect(stdout).toContain('\nFPM_slot_php83=( slot=php8.3 config=/etc/php/fpm-php8.3/php-fpm.conf )\n');
    expect(stdout).not.toContain(FIX_PREFIX);
    expect(readBack(system, stdout).map(({ name, binary, problems }) => ({ name, binary, problems }))).toEqual([
      { name: 'php81', binary: '/usr/lib64/php8.1/bin/php-fpm', problems: [] },
      { name: 'php83', binary: '/usr/lib/php8.3/bin/php-fpm', problems: [] },
    ]);
  });

  test('Gentoo Prefix: the layouts are probed under $EPREFIX', async () => {
    const eprefix = '/home/admin/gentoo';
    const system = makeMachine('bash', { [`${eprefix}/usr/lib64/php8.2/bin/php-fpm`]: '8.2.36' });
    addGentoo(system, '8.2', 'lib64', eprefix);
    addGentoo(system, '8.1', 'lib64'); // outside the prefix: not this system's
    const { code, stdout } = await discover(system, [], { EPREFIX: eprefix });
    expect(code).toBe(0);
    expect(stdout).toContain(`FPM_slot_php82=( slot=php8.2 config=${eprefix}/etc/php/fpm-php8.2/php-fpm.conf )`);
    expect(stdout).not.toContain('php8.1');
    expect(readBack(system, stdout, { EPREFIX: eprefix })[0]?.binary).toBe(`${eprefix}/usr/lib64/php8.2/bin/php-fpm`);
  });

  test('Alpine: /etc/php<vv>, /usr/sbin/php-fpm<vv>, every pool and listener, the effective pid line', async () => {
    const system = makeMachine('dash', { '/usr/sbin/php-fpm82': '8.2.28', '/usr/sbin/php-fpm8': '8.0.30' });
    addAlpine(system, '82');
    // php.ini alone (php83 without php83-fpm): not a php-fpm slot.
    system.addDirectories('/etc/php83').addFile('/etc/php83/php.ini', '');
    // An older release's php8 names the major version only: declared by its binary.
    system.addDirectories('/etc/php8/php-fpm.d').addFile('/etc/php8/php-fpm.conf', '[global]\ninclude=/etc/php8/php-fpm.d/*.conf\n');
    system.addFile('/etc/php8/php-fpm.d/www.conf', '[www]\nlisten = 127.0.0.1:9008\n').addFile('/usr/sbin/php-fpm8', '', EXECUTABLE);
    const { code, stdout } = await discover(system);
    expect(code).toBe(0);
    expect(stdout).toContain('# php8.2 (Alpine): /usr/sbin/php-fpm82\n#   version: PHP 8.2.28 (fpm-fcgi)');
    expect(stdout).toContain('#   pool www: listen 127.0.0.1:9000 (/etc/php82/php-fpm.d/www.conf:2)\n');
    expect(stdout).toContain('#   pool api: listen /run/php-fpm-api.sock, pm.status_listen 127.0.0.1:9100 (/etc/php82/php-fpm.d/www.conf:4)\n');
    expect(stdout).toContain("#   fix: sed -i '3s/^[[:space:]]*pid[[:space:]]*=/;&/' /etc/php82/php-fpm.conf\n");
    expect(stdout).toContain('\nFPM_slot_php82="slot=php8.2 config=/etc/php82/php-fpm.conf"\n');
    expect(stdout).toContain('\nFPM_slot_php8="binary=/usr/sbin/php-fpm8 config=/etc/php8/php-fpm.conf"\n');
    expect(stdout).not.toContain('php83');
    expect(readBack(system, stdout).map(({ name, binary, problems }) => ({ name, binary, problems }))).toEqual([
      { name: 'php8', binary: '/usr/sbin/php-fpm8', problems: [] },
      { name: 'php82', binary: '/usr/sbin/php-fpm82', problems: [] },
    ]);
  });

  test("Remi's collections: /etc/opt/remi/php<vv>, /opt/remi/php<vv>/root/usr/sbin/php-fpm", async () => {
    const system = makeMachine('dash', { '/opt/remi/php83/root/usr/sbin/php-fpm': '8.3.14' });
    addRemi(system, '83');
    const { stdout } = await discover(system);
    expect(stdout).toContain("# php8.3 (Remi's collection): /opt/remi/php83/root/usr/sbin/php-fpm\n");
    expect(stdout).toContain('#   pool www: listen /var/opt/remi/php83/run/php-fpm/www.sock');
    expect(stdout).toContain("#   fix: sed -i '2s/^[[:space:]]*pid[[:space:]]*=/;&/' /etc/opt/remi/php83/php-fpm.conf\n");
    expect(stdout).toContain('\nFPM_slot_php83="slot=php8.3 config=/etc/opt/remi/php83/php-fpm.conf"\n');
    expect(readBack(system, stdout)[0]?.binary).toBe('/opt/remi/php83/root/usr/sbin/php-fpm');
  });
});

describe('what discover decides', () => {
  test('one version in two layouts: the second gets a suffixed name and binary=, for slot= resolves to the first', async () => {
    const system = makeMachine('dash', { '/usr/sbin/php-fpm8.2': '8.2.36', '/opt/remi/php82/root/usr/sbin/php-fpm': '8.2.29' });
    addDebian(system, '8.2');
    addRemi(system, '82');
    const { stdout } = await discover(system);
    expect(stdout).toContain('\nFPM_slot_php82="slot=php8.2 config=/etc/php/8.2/fpm/php-fpm.conf"\n');
    expect(stdout).toContain('\nFPM_slot_php82_remi="binary=/opt/remi/php82/root/usr/sbin/php-fpm config=/etc/opt/remi/php82/php-fpm.conf"\n');
    expect(readBack(system, stdout).map(({ name, binary }) => ({ name, binary }))).toEqual([
      { name: 'php82', binary: '/usr/sbin/php-fpm8.2' },
      { name: 'php82_remi', binary: '/opt/remi/php82/root/usr/sbin/php-fpm' },
    ]);
  });

  test('--form chooses the form whatever /bin/sh is; an unknown form is a usage error', async () => {
    const dash = makeMachine('dash', { '/usr/sbin/php-fpm8.2': '8.2.36' });
    addDebian(dash, '8.2');
    const array = await discover(dash, ['--form', 'array']);
    expect(array.stdout).toContain('# The array form, as asked (--form array).');
    expect(array.stdout).toContain('\nFPM_slot_php82=( slot=php8.2 config=/etc/php/8.2/fpm/php-fpm.conf )\n');
    const bash = makeMachine('bash', { '/usr/sbin/php-fpm8.2': '8.2.36' });
    addDebian(bash, '8.2');
    expect((await discover(bash, ['--form=string'])).stdout).toContain('\nFPM_slot_php82="slot=php8.2 config=/etc/php/8.2/fpm/php-fpm.conf"\n');
    expect(await discover(bash, ['--form', 'yaml'])).toEqual({ code: 2, stdout: '', stderr: 'php-fpm-multi: unknown --form "yaml"; one of: string, array\n' });
    expect((await discover(bash, ['web'])).code).toBe(2);
  });

  test('a binary that does not answer -v, and a config php-fpm would not read, are said, still declared', async () => {
    const system = makeMachine('dash', {});
    addDebian(system, '8.2');
    system.addFile('/etc/php/8.2/fpm/pool.d/www.conf', '[www]\nlisten = "unterminated\n');
    system.runHandler = () => ({ exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '', timedOut: true });
    const { code, stdout } = await discover(system);
    expect(code).toBe(0);
    expect(stdout).toContain('#   version: unknown (/usr/sbin/php-fpm8.2 -v did not answer within 10 s)\n');
    expect(stdout).toMatch(/#   the config cannot be read as php-fpm reads it: .*www\.conf/);
    expect(stdout).toContain('\nFPM_slot_php82="slot=php8.2 config=/etc/php/8.2/fpm/php-fpm.conf"\n');
  });

  test('an installed php-fpm without its default config is named; nothing found at all exits 1', async () => {
    const system = makeMachine('dash', {});
    system.addDirectories('/usr/sbin').addFile('/usr/sbin/php-fpm8.3', '', EXECUTABLE);
    const { code, stdout, stderr } = await discover(system);
    expect(code).toBe(1);
    expect(stdout).toContain('# No php-fpm with its default config was found: nothing is declared.\n');
    expect(stdout).toContain("# not declared: php8.3 (/usr/sbin/php-fpm8.3) is installed, but its distribution's default config was not found");
    expect(stderr).toMatch(/^php-fpm-multi: no php-fpm with its default config found/);
  });

  test('control characters found in a pool name cannot end a comment line', async () => {
    const system = makeMachine('dash', { '/usr/sbin/php-fpm8.2': '8.2.36' });
    addDebian(system, '8.2');
    system.addFile('/usr/sbin/php-fpm8.2', '', EXECUTABLE);
    system.runHandler = () => ({ exitCode: 0, signal: null, stdout: 'PHP 8.2.36 (fpm-fcgi)\rFPM_slot_x="evil"\n', stderr: '', timedOut: false });
    const { stdout } = await discover(system);
    expect(stdout).toContain('#   version: PHP 8.2.36 (fpm-fcgi)?FPM_slot_x="evil"\n');
    expect(readBack(system, stdout).map(({ name }) => name)).toEqual(['php82']);
  });

  test('candidates come in version order from the names in each layout directory', () => {
    const listing: Record<string, string[]> = { '/etc/php': ['8.10', '8.2', 'fpm-php7.4', 'cli-php7.4', 'mods-available'], '/etc': ['php83', 'php', 'php-fpm.d'], '/etc/opt/remi': ['php74'] };
    const candidates = listDiscoveryCandidates('', (dir) => listing[dir] ?? []);
    expect(candidates.map(({ distribution, label, config }) => [distribution, label, config])).toEqual([
      ['debian', 'php8.2', '/etc/php/8.2/fpm/php-fpm.conf'],
      ['debian', 'php8.10', '/etc/php/8.10/fpm/php-fpm.conf'],
      ['gentoo', 'php7.4', '/etc/php/fpm-php7.4/php-fpm.conf'],
      ['alpine', 'php8.3', '/etc/php83/php-fpm.conf'],
      ['remi', 'php7.4', '/etc/opt/remi/php74/php-fpm.conf'],
    ]);
    expect(nameInstances(candidates)).toEqual(['php82', 'php810', 'php74', 'php83', 'php74_remi']);
  });

  test('the pid fix quotes a file name that needs it', () => {
    expect(formatPidFix({ file: '/etc/php fpm/php-fpm.conf', line: 7, pid: '/run/x.pid' })).toBe("sed -i '7s/^[[:space:]]*pid[[:space:]]*=/;&/' '/etc/php fpm/php-fpm.conf'");
  });
});
