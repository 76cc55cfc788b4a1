// What the second adversarial tryout found (/work/wt/tryout2-findings.md, findings 4, 10b, 10d,
// 10e, 10f), against the real php8.2-fpm. Each test names its finding. The rule (README "Safety"):
// everything start would refuse, check reports, and restart and reload refuse it before they stop
// or signal anything; php-fpm's own config test (-t) passes some of it.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { mountTmpfs } from '../helpers/filesystems.js';
import { isAlive } from '../helpers/processes.js';
import { CGI_FCGI, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms, type FpmScratch } from '../helpers/fpm.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, '/usr/bin/getent', '/usr/bin/mount', '/usr/bin/umount'));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** /proc/sys/fs/nr_open: no process may have more open files. */
function openFilesLimit(): number {
  return Number(readFileSync('/proc/sys/fs/nr_open', 'utf8'));
}

describe('finding 4: what php-fpm -t passes and its start refuses is a problem before restart and reload', () => {
  const cases: [string, (config: string) => void, RegExp][] = [
    [
      'listen.acl_users naming an unknown user',
      (config) => writeFileSync(config, `${readFileSync(config, 'utf8')}listen.acl_users = www-data,nosuchuser\n`),
      /pool 'a' \(.*php-fpm\.conf:\d+\): listen\.acl_users names user 'nosuchuser', which this system does not know \(getent passwd nosuchuser finds nothing\): create the user or fix listen\.acl_users/,
    ],
    [
      'listen.acl_groups naming an unknown group',
      (config) => writeFileSync(config, `${readFileSync(config, 'utf8')}listen.acl_groups = www-data,nosuchgroup\n`),
      /listen\.acl_groups names group 'nosuchgroup', which this system does not know \(getent group nosuchgroup finds nothing\)/,
    ],
    [
      'rlimit_files in [global] above /proc/sys/fs/nr_open',
      (config) => writeFileSync(config, readFileSync(config, 'utf8').replace('[global]\n', `[global]\nrlimit_files = ${openFilesLimit() * 100}\n`)),
      /rlimit_files = \d+ in \[global\] \(.*php-fpm\.conf:2\): \d+ is above \/proc\/sys\/fs\/nr_open \(\d+\), the most open files the kernel allows any process; lower it to at most \d+/,
    ],
    [
      'listen.acl_users written with a space after the comma',
      (config) => writeFileSync(config, `${readFileSync(config, 'utf8')}listen.acl_users = www-data, nobody\n`),
      /listen\.acl_users names user ' nobody', spaces included \(php-fpm splits the list at commas without trimming\)/,
    ],
  ];
  test.each(cases)('%s: check exit 6 naming it; restart and reload leave the running master serving', async (_what, edit, named) => {
    const config = scratch.writeConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    expect((await cli('start')).code).toBe(0);
    const master = masterPid(scratch, 'a');
    edit(config);
    // php-fpm's own test passes: this is what it finds only at start.
    const test = spawnSync(PHP_FPM, ['-t', '--fpm-config', config], { encoding: 'utf8', timeout: 60_000 });
    expect(test.status, test.stderr).toBe(0);
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(6);
    expect(checked.stderr).toMatch(named);
    for (const command of ['restart', 'reload'] as const) {
      const result = await cli(command);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stderr).toMatch(named);
      expect(isAlive(master), `${command} left the master running`).toBe(true);
      expect(masterPid(scratch, 'a')).toBe(master);
      expect(requestPhp(scratch, 'a')).toContain('hello from a');
    }
  });

  test('a start refused so is a problem of that instance, and nothing is left running', async () => {
    const config = scratch.writeConfig('a', 'listen.acl_users = nosuchuser');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/a: not started: .*listen\.acl_users names user 'nosuchuser'/);
  });
});

describe('finding 10b: restart of a stopped instance that cannot be started fails, as start does', () => {
  test('a socket directory start cannot create (below a file): restart exits 1 naming it', async () => {
    const config = scratch.writeConfig('a');
    writeFileSync(config, readFileSync(config, 'utf8').replace(scratch.socket('a'), `${scratch.dir}/index.php/missing/a.sock`));
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    const restarted = await cli('restart');
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(1);
    expect(restarted.stderr).toMatch(/a: not restarted: it does not run, and it cannot be started: .*missing \(the directory of pool 'a''s listen/);
  });
  test('a bad include: restart a exits 1', async () => {
    const config = scratch.writeConfig('a', `include = ${scratch.dir}/nowhere/*.conf\ninclude=${scratch.dir}/no-such-file.conf`);
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    const restarted = await cli('restart', 'a');
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(1);
    expect(restarted.stderr).toMatch(/a: not restarted: it does not run, and it cannot be started/);
  });
});

describe('finding 10f: check warns when the run directory exists and cannot be written', () => {
  let mounted = false;
  afterEach(() => {
    if (mounted) spawnSync('umount', ['-l', scratch.runDir]);
    mounted = false;
  });
  function mountRunDir(): void {
    mountTmpfs(scratch.runDir);
    mounted = true;
  }

  test('read-only: check exits 0 with a warning naming EROFS and the fix; start then indeed starts nothing', async () => {
    mountRunDir();
    const config = scratch.writeConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    expect(spawnSync('mount', ['-o', 'remount,ro', scratch.runDir]).status).toBe(0);
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stderr).toContain(
      `warning: the run directory ${scratch.runDir} cannot be written (read-only file system (EROFS)), so start would fail to write its launch intent and records there and start nothing (stop and status still work): remount the file system of ${scratch.runDir} read-write`,
    );
    expect((await cli('start')).code).toBe(1);
  });

  test('full: check warns, and leaves nothing behind', async () => {
    mountRunDir();
    const config = scratch.writeConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    const filler = join(scratch.runDir, 'filler');
    const fd = openSync(filler, 'a');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096, 120));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      closeSync(fd);
    }
    const before = readdirSync(scratch.runDir).sort();
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stderr).toMatch(/warning: the run directory .* cannot be written \(no space left on the device \(ENOSPC\)\).*: free space in /);
    expect(readdirSync(scratch.runDir).sort()).toEqual(before);
    unlinkSync(filler);
    const again = await cli('check');
    expect(again.stderr).not.toContain('cannot be written');
    expect(existsSync(join(scratch.runDir, 'filler'))).toBe(false);
    expect(readdirSync(scratch.runDir)).toEqual([]);
  });
});

describe('finding 10e: advice that works when followed', () => {
  test.each(['FIFO', 'symlink'] as const)('a %s planted at pidfile= in a world-writable directory: the advice moves the pidfile at once, and following it passes check', async (kind) => {
    const shared = join(scratch.dir, 'shared');
    mkdirSync(shared);
    spawnSync('chmod', ['1777', shared]);
    const planted = join(shared, 'a.pid');
    if (kind === 'FIFO') expect(spawnSync('mkfifo', [planted]).status).toBe(0);
    else expect(spawnSync('ln', ['-s', '/etc/passwd', planted]).status).toBe(0);
    const config = scratch.writeConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config} pidfile=${planted}"`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`${shared} is writable by others (mode 01777), where no pidfile can be trusted. Move the pidfile to a directory only root can write (remove pidfile= for the default in the run directory`);
    expect(checked.stderr).not.toContain('php-fpm creates the pidfile itself');
    // Followed: pidfile= removed (the default in the run directory), the planted file removed.
    unlinkSync(planted);
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config}"`);
    const again = await cli('check');
    expect(again.code, again.stderr).toBe(0);
  });

  test('--conf /proc/kmsg (EAGAIN) is not a regular readable file, not a permissions problem', async () => {
    const checked = await runCli(['--conf', '/proc/kmsg', 'check']);
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain('/proc/kmsg: cannot be read as a declaration file (EAGAIN): it is not a regular file that can be read to its end');
    expect(checked.stderr).not.toContain('permissions');
  });

  test('an environment too large for exec (E2BIG): check and start name the size and the limit, and nothing is launched', async () => {
    const config = scratch.writeConfig('a');
    // 21,000 three-byte characters, twice per env= word: 126 KB each (under the kernel's 128 KiB for one string), 20 of them.
    const words = Array.from({ length: 20 }, (_, i) => `"env=W${i}=$A$A"`).join(' ');
    writeFileSync(scratch.decl, `FPM_run_dir=${scratch.runDir}\nA="${'€'.repeat(21_000)}"\nFPM_slot_a=( "slot=8.2" "config=${config}" ${words} )\n`);
    // The kernel indeed refuses it (so the refusal is not spurious).
    const env = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`W${i}`, '€'.repeat(42_000)]));
    expect(spawnSync('/bin/true', [], { env }).error?.message).toMatch(/E2BIG/);
    const named = /FPM_slot_a \(line 3\): the arguments and environment php-fpm would be started with take 25\d{5} bytes \(strings and pointers, as exec counts them\), more than the \d+ the kernel allows here \(ARG_MAX/;
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toMatch(named);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/a: not started: the arguments and environment php-fpm would be started with take \d+ bytes/);
    expect(existsSync(join(scratch.runDir, 'a.pid'))).toBe(false);
  });
});

describe('finding 10d: a running disabled instance (started by name)', () => {
  test('restart waits for its pools to answer ping, like any other', async () => {
    const a = scratch.writeConfig('a', 'ping.path = /ping');
    const b = scratch.writeConfig('b', 'ping.path = /ping');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${a}"\nFPM_slot_b="slot=8.2 config=${b} enabled=no"`);
    expect((await cli('start')).code).toBe(0);
    expect((await cli('start', 'b')).code).toBe(0);
    const before = masterPid(scratch, 'b');
    const restarted = await cli('restart');
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0);
    // With the socket hand-over (issue 13) a restart says "restarted (pid N → M), …"; either way it waited for the ping.
    expect(restarted.stdout).toMatch(/^php-fpm-multi: a: (started \(pid \d+\)|restarted \(pid \d+ → \d+\)[^;\n]*); ready: a answers ping$/m);
    // With the socket hand-over (issue 13) a restart says "restarted (pid N → M), …"; either way it waited for the ping.
    expect(restarted.stdout).toMatch(/^php-fpm-multi: b: (started \(pid \d+\)|restarted \(pid \d+ → \d+\)[^;\n]*); ready: b answers ping$/m);
    expect(masterPid(scratch, 'b')).not.toBe(before);
    expect(requestPhp(scratch, 'b')).toContain('hello from b');
  });

  test('restart refuses what start would refuse for it, and leaves it serving', async () => {
    const b = scratch.writeConfig('b');
    scratch.declare(`FPM_slot_b="slot=8.2 config=${b} enabled=no"\nFPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"`);
    expect((await cli('start', 'b')).code).toBe(0);
    const master = masterPid(scratch, 'b');
    writeFileSync(b, `${readFileSync(b, 'utf8')}listen.acl_users = nosuchuser\n`);
    const restarted = await cli('restart');
    expect(restarted.code).toBe(1);
    expect(restarted.stderr).toMatch(/b: not restarted, left as it was: .*listen\.acl_users names user 'nosuchuser'/);
    expect(isAlive(master)).toBe(true);
    expect(requestPhp(scratch, 'b')).toContain('hello from b');
  });
});
