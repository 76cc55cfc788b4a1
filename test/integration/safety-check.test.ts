// `check` reports everything `start` refuses (one preflight for both, src/process/preflight.ts), and its
// advice works when followed. Issue 9 cases 2 and 7, issue 10 "Quiet traps". Real php-fpm where
// php-fpm is involved.
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { FpmPool } from '../../src/php-fpm/config/types.js';
import { findListenConflicts } from '../../src/php-fpm/listen.js';
import { buildModel, type FileProbe, type ModelContext } from '../../src/model/build.js';
import { readDeclaration } from '../../src/declaration/reader.js';
import { runCli } from '../helpers/cli.js';
import {
  CGI_FCGI, declareInstances, findFreePort, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms,
  type FpmScratch,
} from '../helpers/fpm.js';

const PHP_CLI = '/usr/bin/php8.2';
/** Debian's www-data: owns /run/php, so a pidfile there is refused. */
const WWW_DATA_UID = 33;

// ---------------------------------------------------------------------------------------------
// The model: pure, with an injected probe.

const FILES = new Set(['/etc/php/a.conf', '/etc/php/b.conf']);
const EXECUTABLES = new Set(['/usr/sbin/php-fpm8.2', '/usr/lib64/php8.3/bin/php-fpm', '/usr/bin/php-fpm9.9']);
const LISTINGS: Record<string, string[]> = {
  '/usr/sbin': ['php-fpm8.2', 'php-fpm', 'php-fpm8.2.bak', 'nginx'],
  '/usr/lib64': ['php8.3', 'php8.4', 'libc.so.6'], // php8.4 has no bin/php-fpm: not installed
};
const PROBE: FileProbe = {
  isFile: (f) => FILES.has(f) || EXECUTABLES.has(f),
  isExecutable: (f) => EXECUTABLES.has(f),
  listDirectory: (dir) => LISTINGS[dir] ?? [],
};
const ROOT: ModelContext = { env: { PATH: `/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin` }, uid: 0, probe: PROBE };

function buildFrom(text: string) {
  return buildModel(readDeclaration(text, { file: '/etc/conf.d/php-fpm', env: {} }), ROOT);
}

describe('advice of the model that works when followed', () => {
  test('a slot that is not installed names the installed ones, and the layouts tried without $PATH noise', () => {
    const [problem, ...rest] = buildFrom('FPM_slot_1="slot=php7.4 config=/etc/php/a.conf"\n').instances[0]!.problems;
    expect(rest).toEqual([]);
    expect(problem).toContain('slot=php7.4: php-fpm 7.4 is not installed; installed slots: php8.2 (/usr/sbin/php-fpm8.2), php8.3 (/usr/lib64/php8.3/bin/php-fpm)');
    expect(problem).not.toContain('.cargo');
    expect(problem).not.toContain('/usr/local/bin');
    expect(problem).not.toContain('php9.9'); // on $PATH only: not a layout slot resolution trusts for listing
    // Following it: one of the named slots works.
    expect(buildFrom('FPM_slot_1="slot=php8.2 config=/etc/php/a.conf"\n').instances[0]!.problems).toEqual([]);
  });

  test.each([
    ['the string form, env', 'FPM_slot_1="slot=8.2 config=/etc/php/a.conf env=GREETING=hello world"\n', `FPM_slot_1="slot=8.2 config=/etc/php/a.conf 'env=GREETING=hello world'"`],
    ['the array form, env', 'FPM_slot_1=( slot=8.2 config=/etc/php/a.conf env=GREETING=hello big world )\n', 'FPM_slot_1=( "slot=8.2" "config=/etc/php/a.conf" "env=GREETING=hello big world" )'],
    ['the string form, args', 'FPM_slot_1="slot=8.2 args=-d memory_limit=256M config=/etc/php/a.conf"\n', `FPM_slot_1="slot=8.2 'args=-d memory_limit=256M' config=/etc/php/a.conf"`],
  ])('an unquoted space in %s: "quote it", with the exact line that works', (_, declared, corrected) => {
    const problems = buildFrom(declared).instances[0]!.problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('not key=value: most likely the rest of');
    expect(problems[0]).not.toContain('did you mean');
    expect(problems[0]!.endsWith(`as in: ${corrected}`)).toBe(true);
    // Following it: the corrected line is accepted and holds the whole value.
    const fixed = buildFrom(`${corrected}\n`).instances[0]!;
    expect(fixed.problems).toEqual([]);
    expect([fixed.env, fixed.args]).toEqual(
      declared.includes('args=') ? [{}, ['-d', 'memory_limit=256M']] : [{ GREETING: declared.includes('big') ? 'hello big world' : 'hello world' }, []],
    );
  });

  test('a likely typo after env= is still reported as a typo, not as a split value', () => {
    const problems = buildFrom('FPM_slot_1="slot=8.2 config=/etc/php/a.conf env=A=1 stop_timout=3"\n').instances[0]!.problems;
    expect(problems).toEqual([expect.stringContaining('unknown key "stop_timout" (did you mean "stop_timeout"?)')]);
  });
});

describe('many instances: output and work stay linear', () => {
  test('1,000 instances on one socket give 999 conflicts, each against the first', () => {
    const pool = (name: string): FpmPool => ({
      name, file: `/etc/php/${name}.conf`, line: 1, listen: '/run/php/shared.sock', listenAt: { file: `/etc/php/${name}.conf`, line: 2 },
      statusListen: null, statusListenAt: null, pingPath: null, pingResponse: null, statusPath: null, pm: 'static', user: null, group: null, prefix: null,
    });
    const instances = Array.from({ length: 1000 }, (_, i) => ({ name: `i${i}`, pools: [pool('www')] }));
    const conflicts = findListenConflicts(instances);
    expect(conflicts).toHaveLength(999);
    expect(new Set(conflicts.map((c) => c.first.instance))).toEqual(new Set(['i0']));
  });

  test('a listen path through a symlinked directory collides with the real one (resolved by the caller)', () => {
    const pool = (listen: string): FpmPool => ({
      name: 'www', file: '/etc/x.conf', line: 1, listen, listenAt: { file: '/etc/x.conf', line: 2 },
      statusListen: null, statusListenAt: null, pingPath: null, pingResponse: null, statusPath: null, pm: 'static', user: null, group: null, prefix: null,
    });
    const instances = [{ name: 'a', pools: [pool('/srv/real/x.sock')] }, { name: 'b', pools: [pool('/srv/link/x.sock')] }];
    expect(findListenConflicts(instances)).toEqual([]);
    const resolved = findListenConflicts(instances, (listen) => listen.replace('/srv/link/', '/srv/real/'));
    expect(resolved.map((c) => [c.first.instance, c.second.instance, c.address])).toEqual([['a', 'b', '/srv/real/x.sock']]);
    expect(resolved[0]!.message).toContain('listen = /srv/link/x.sock'); // as written, for the admin to find
  });
});

// ---------------------------------------------------------------------------------------------
// check and start against real php-fpm.

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, PHP_CLI));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

function editConfig(name: string, edit: (text: string) => string): string {
  const config = join(scratch.dir, name, 'php-fpm.conf');
  writeFileSync(config, edit(readFileSync(config, 'utf8')));
  return config;
}

/** Adds lines to the [global] section of instance `name`'s config. */
function addGlobal(name: string, lines: string): string {
  return editConfig(name, (text) => text.replace('[global]', `[global]\n${lines}`));
}

describe('check reports what start refuses', () => {
  test.each([
    ['an unknown directive', (text: string) => text.replace('[global]\n', '[global]\nbogus_directive = 1\n'), /unknown entry 'bogus_directive'/],
    ['a pool without user', (text: string) => text.replace('user = www-data\n', ''), /\[pool b\] user has not been defined/],
    ['an unknown pool user', (text: string) => text.replace('user = www-data', 'user = no-such-user-check'), /cannot get uid for user 'no-such-user-check'/],
  ])('%s, which only php-fpm knows: check runs its -t and exits 6 with its lines; the fix found, check and start pass', async (_what, edit, says) => {
    declareInstances(scratch, ['a', 'b']);
    const original = readFileSync(join(scratch.dir, 'b', 'php-fpm.conf'), 'utf8');
    editConfig('b', edit);
    const checked = await cli('check');
    expect(checked.code, checked.stdout + checked.stderr).toBe(6);
    expect(checked.stderr).toMatch(new RegExp(`FPM_slot_b \\(line \\d+\\): configuration test failed: ${PHP_FPM} --test exited with status \\d+`));
    expect(checked.stderr).toMatch(says);
    expect(checked.stderr).not.toMatch(/FPM_slot_a \(line \d+\): configuration test failed/);
    expect(checked.stderr).toContain('1 problem;');
    // check changes nothing and starts nothing.
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    writeFileSync(join(scratch.dir, 'b', 'php-fpm.conf'), original);
    expect((await cli('check')).code).toBe(0);
    expect((await cli('start')).code).toBe(0);
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
  });

  test('two instances whose configs listen on one address: check exits 6 naming both; restart stops nothing', async () => {
    declareInstances(scratch, ['a', 'b']);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    const before = [masterPid(scratch, 'a'), masterPid(scratch, 'b')];
    // b's config now listens where a does: php-fpm's own -t passes it, start would fail on bind.
    const bConfig = editConfig('b', (text) => text.replace(`listen = ${scratch.socket('b')}`, `listen = ${scratch.socket('a')}`));

    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`instance 'a' pool 'a'`);
    expect(checked.stderr).toContain(`instance 'b' pool 'b' (${bConfig}:7, listen = ${scratch.socket('a')})`);
    expect(checked.stderr).toContain(`both listen on ${scratch.socket('a')}`);

    const restarted = await cli('restart');
    expect(restarted.code).toBe(6);
    expect(restarted.stderr).toContain(`both listen on ${scratch.socket('a')}`);
    expect([masterPid(scratch, 'a'), masterPid(scratch, 'b')]).toEqual(before);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
  });

  test('a listen path through a symlinked directory: check and start refuse before php-fpm fails to bind', async () => {
    declareInstances(scratch, ['a', 'b']);
    symlinkSync(join(scratch.dir, 'a'), join(scratch.dir, 'alias'));
    editConfig('b', (text) => text.replace(`listen = ${scratch.socket('b')}`, `listen = ${join(scratch.dir, 'alias', 'php-fpm.sock')}`));
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`both listen on ${scratch.socket('a')}`);
    expect(checked.stderr).toContain(`listen = ${join(scratch.dir, 'alias', 'php-fpm.sock')}`);
    const started = await cli('start');
    expect(started.code).toBe(6);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('a pidfile in an untrusted directory: check exits 6 with the reason start gives; a root-only directory works', async () => {
    const shared = join(scratch.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777); // as /tmp (mkdir's mode goes through the umask)
    declareInstances(scratch, ['a'], `pidfile=${shared}/a.pid`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`pidfile ${shared}/a.pid: ${shared} is writable by others`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`pidfile ${shared}/a.pid: ${shared} is writable by others`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    // Following the advice: a directory only root can write.
    declareInstances(scratch, ['a'], `pidfile=${scratch.dir}/a/a.pid`);
    expect((await cli('check')).code).toBe(0);
    expect((await cli('start')).code).toBe(0);
    expect(readFileSync(`${scratch.dir}/a/a.pid`, 'utf8')).toMatch(/^\d+$/);
  });

  test('a run directory others can write: check exits 6 as start does, and creates nothing', async () => {
    const shared = join(scratch.dir, 'shared-run');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    writeFileSync(scratch.decl, `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\nFPM_run_dir=${shared}/php-fpm\n`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`run directory ${shared}/php-fpm: ${shared} is writable by group or others without the sticky bit (mode 0777)`);
    expect(existsSync(`${shared}/php-fpm`)).toBe(false);
    const started = await cli('start');
    expect(started.code).not.toBe(0);
    expect(started.stderr).toContain(`run directory ${shared}/php-fpm: ${shared} is writable by group or others without the sticky bit (mode 0777)`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('pidfile=<run dir>/lock (or a record): check exits 6; without pidfile= it works', async () => {
    for (const name of ['lock', 'a.record.json']) {
      declareInstances(scratch, ['a'], `pidfile=${scratch.runDir}/${name}`);
      const checked = await cli('check');
      expect(checked.code).toBe(6);
      expect(checked.stderr).toContain(`pidfile ${scratch.runDir}/${name} is in the run directory ${scratch.runDir}, where php-fpm-multi keeps its lock, records and temporary files`);
      const started = await cli('start');
      expect(started.code).toBe(1);
      expect(listFpmProcesses(scratch.dir)).toEqual([]);
    }
    declareInstances(scratch, ['a']);
    expect((await cli('check')).code).toBe(0);
    expect((await cli('start')).code).toBe(0);
  });

  test("Debian's pid line in a directory www-data owns: the advice is to remove the line, not a pidfile= that is refused", async () => {
    const runPhp = join(scratch.dir, 'run-php');
    mkdirSync(runPhp, { mode: 0o755 });
    chownSync(runPhp, WWW_DATA_UID, WWW_DATA_UID);
    declareInstances(scratch, ['a']);
    const config = addGlobal('a', `pid = ${runPhp}/php8.2-fpm.pid`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`${config} sets "pid = ${runPhp}/php8.2-fpm.pid", which php-fpm uses instead of --pid`);
    expect(checked.stderr).toContain(`remove the "pid = …" line at ${config}:2 (php-fpm-multi passes --pid itself)`);
    expect(checked.stderr).toContain(`(pidfile=${runPhp}/php8.2-fpm.pid would not do: ${runPhp} is owned by uid ${WWW_DATA_UID}`);
    expect(checked.stderr).not.toContain(`or set pidfile=`);
    // Following the advice: without the line, check passes and the instance starts.
    editConfig('a', (text) => text.replace(`pid = ${runPhp}/php8.2-fpm.pid\n`, ''));
    expect((await cli('check')).code).toBe(0);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
  });

  test('a pid line added to a running instance: restart leaves it running, as check said it would', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const pid = masterPid(scratch, 'a');
    addGlobal('a', `pid = ${scratch.dir}/a/elsewhere.pid`);
    expect((await cli('check')).code).toBe(6);
    const restarted = await cli('restart');
    expect(restarted.code).toBe(1);
    expect(restarted.stderr).toContain('a: not restarted, left as it was:');
    expect(restarted.stderr).toContain(`sets "pid = ${scratch.dir}/a/elsewhere.pid"`);
    expect(masterPid(scratch, 'a')).toBe(pid);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
  });

  test('a pid line naming a trusted path: pidfile=<that path> is offered, and works', async () => {
    declareInstances(scratch, ['a']);
    const pid = join(scratch.dir, 'a', 'fpm.pid');
    addGlobal('a', `pid = ${pid}`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`; or set pidfile=${pid}`);
    declareInstances(scratch, ['a'], `pidfile=${pid}`);
    // declareInstances rewrote the config: put the pid line back, as the admin's config has it.
    addGlobal('a', `pid = ${pid}`);
    expect((await cli('check')).code).toBe(0);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(readFileSync(pid, 'utf8')).toMatch(/^\d+$/);
  });

  // Tryout 3: a directory at the listen path passed check, and a reload's new master died of it.
  test('a directory at a listen path: check and reload name it, the running master keeps serving; after rmdir it reloads', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const master = masterPid(scratch, 'a');
    const dir = join(scratch.dir, 'a', 'dir.sock');
    mkdirSync(dir);
    editConfig('a', (text) => text.replace(`listen = ${scratch.socket('a')}`, `listen = ${dir}`));
    const message = `pool 'a''s listen ${dir} (${join(scratch.dir, 'a', 'php-fpm.conf')}:7) is a directory, so php-fpm could not bind its socket there: remove the directory (rmdir ${dir}) or choose another listen path`;
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(message);
    const reloaded = await cli('reload');
    expect(reloaded.code).toBe(1);
    expect(reloaded.stderr).toContain(message);
    expect(masterPid(scratch, 'a')).toBe(master);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    rmSync(dir, { recursive: true });
    expect((await cli('check')).code).toBe(0);
    const retried = await cli('reload');
    expect(retried.code, retried.stderr).toBe(0);
  });

  // Issue 14: /run is a tmpfs, a socket directory made by hand is gone after a reboot; start makes it.
  test('a missing socket directory: check says start will create it (creating nothing); start creates it and serves', async () => {
    declareInstances(scratch, ['a']);
    const dir = join(scratch.dir, 'sockets');
    editConfig('a', (text) => text.replace(`listen = ${scratch.socket('a')}`, `listen = ${dir}/a.sock`));
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain(`${dir} (the directory of pool 'a''s listen ${dir}/a.sock (${join(scratch.dir, 'a', 'php-fpm.conf')}:7)) does not exist; start will create it, 0755`);
    expect(existsSync(dir)).toBe(false);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain(`created ${dir} (root:root 0755) for pool 'a' of instance 'a'`);
    expect(started.stderr).not.toContain('unable to bind');
    expect(listFpmProcesses(scratch.dir)).not.toEqual([]);
  });

  test("binary= naming PHP's CLI: check says so and names php-fpm; that works", async () => {
    declareInstances(scratch, ['a'], `binary=${PHP_CLI}`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`${PHP_CLI} is PHP's CLI (php8.2 -v says "(cli)"), not php-fpm: use slot=php8.2 (Debian: binary=/usr/sbin/php-fpm8.2)`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`${PHP_CLI} is PHP's CLI`);
    declareInstances(scratch, ['a'], 'binary=/usr/sbin/php-fpm8.2');
    expect((await cli('check')).code).toBe(0);
    expect((await cli('start')).code).toBe(0);
  });

  test('listen.allowed_clients without the controller and a ping.path: check and start name it; adding 127.0.0.1 works', async () => {
    const port = await findFreePort();
    scratch.declare(`FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')} start_timeout=20"`);
    editConfig('a', (text) => text.replace(`listen = ${scratch.socket('a')}`, `listen = 127.0.0.1:${port}\nlisten.allowed_clients = 192.0.2.1\nping.path = /ping`));
    const fix = 'add 127.0.0.1 to listen.allowed_clients or remove ping.path';
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`listen.allowed_clients = 192.0.2.1 does not let php-fpm-multi in (it asks the ping from 127.0.0.1), so every start would wait out start_timeout: ${fix}`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(fix);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    editConfig('a', (text) => text.replace('listen.allowed_clients = 192.0.2.1', 'listen.allowed_clients = 192.0.2.1,127.0.0.1'));
    expect((await cli('check')).code).toBe(0);
    const retried = await cli('start');
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain('ready: a answers ping');
  });

  test('process_control_timeout = 0 (the default): a warning with the fix, exit 0; with 10s: none', async () => {
    declareInstances(scratch, ['a'], 'stop_timeout=20');
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    const warned = await cli('check');
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain(`warning: FPM_slot_a (line 1): ${config} leaves process_control_timeout at 0 (php-fpm's default): a graceful stop or reload ends requests in flight`);
    expect(warned.stderr).toContain(`add "process_control_timeout = 20s" to the [global] section of ${config}`);
    addGlobal('a', 'process_control_timeout = 10s');
    const quiet = await cli('check');
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toContain('process_control_timeout');
  });
});

describe('a config or pidfile shared by instances', () => {
  test('1,000 instances sharing one config: reported once, in a few KB', async () => {
    const config = scratch.writeConfig('a');
    scratch.declare(Array.from({ length: 1000 }, (_, i) => `FPM_slot_${i + 1}="slot=8.2 config=${config}"`).join('\n'));
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr.length + checked.stdout.length).toBeLessThan(4096);
    expect(checked.stderr).toContain(`config ${config} is used by FPM_slot_1 (line 1) and also by FPM_slot_2 (line 2), FPM_slot_3 (line 3), FPM_slot_4 (line 4), … (996 more)`);
  });

  test('a duplicate of a running instance names the later one; the running one stays usable for status and stop', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const pid = masterPid(scratch, 'a');
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    writeFileSync(scratch.decl, `${readFileSync(scratch.decl, 'utf8')}FPM_slot_copy="slot=8.2 config=${config}"\n`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`config ${config} is used by FPM_slot_a (line 1) and also by FPM_slot_copy (line 3): give the later one its own config`);
    expect(checked.stderr).not.toContain('FPM_slot_a (line 1): config');
    expect((await cli('list')).stdout).toContain(`FPM_slot_copy: config ${config} is already used by FPM_slot_a (line 1), declared first`);
    // start still refuses the whole run while the collision exists.
    expect((await cli('start')).code).toBe(6);
    const status = await cli('--json', 'status', 'a');
    expect(JSON.parse(status.stdout).instances.map((i: { state: string; pid: number }) => [i.state, i.pid])).toEqual([['running', pid]]);
    const stopped = await cli('stop', 'a');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`a: stopped (pid ${pid})`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });
});
