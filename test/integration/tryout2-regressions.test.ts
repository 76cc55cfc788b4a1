// What the second adversarial tryout found on main 24c6a4d (/work/wt/tryout2-findings.md), against
// the real php8.2-fpm. Each test names its finding. The rules (README "Safety"): a record names
// the declaration file that wrote it and another file's record is never acted on; only a pidfile
// in the file's own run directory proves a successor; the file's last run directory is
// remembered, so that stop and status reach its instances whatever the file became; stop and
// status create nothing when nothing is recorded.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, onTestFinished, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { isAlive, recordSignals } from '../helpers/processes.js';
import {
  CGI_FCGI, declareInstances, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms, type FpmScratch,
} from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, '/usr/bin/mount', '/usr/bin/umount'));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

const waitGone = (pid: number) => until(`pid ${pid} gone`, async () => !isAlive(pid), 30_000);

/** A declaration file name of its own: its default run directory (/run/php-fpm-multi/<name>) is shared with nothing else. */
const uniqueName = () => `php-fpm.t2-${basename(scratch.dir)}`;

describe('finding 1: two declaration files sharing a run directory never act on each other’s records', () => {
  test('two files of the same name without FPM_run_dir: the second one’s status, stop and check leave the first one’s instances alone', async () => {
    const name = uniqueName();
    const sharedRun = `/run/php-fpm-multi/${name}`;
    mkdirSync(join(scratch.dir, 'etc'), { mode: 0o755 });
    mkdirSync(join(scratch.dir, 'other'), { mode: 0o755 });
    const first = join(scratch.dir, 'etc', name);
    const second = join(scratch.dir, 'other', name);
    writeFileSync(first, ['a', 'b'].map((n) => `FPM_slot_${n}="slot=8.2 config=${scratch.writeConfig(n)}"`).join('\n') + '\n');
    writeFileSync(second, `FPM_slot_w="slot=8.2 config=${scratch.writeConfig('w')}"\n`);
    try {
      expect((await runCli(['--conf', first, 'start'])).code).toBe(0);
      const a = Number(readFileSync(join(sharedRun, 'a.pid'), 'utf8'));
      const b = Number(readFileSync(join(sharedRun, 'b.pid'), 'utf8'));
      const belongs = (n: string) =>
        `${sharedRun}/${n}.record.json belongs to ${first}, not ${second}: two declaration files share this run directory; give each its own FPM_run_dir`;

      const status = await runCli(['--conf', second, '--json', 'status']);
      expect(status.code, status.stderr).toBe(3);
      expect(JSON.parse(status.stdout).instances.map((i: { name: string; state: string }) => [i.name, i.state])).toEqual([['w', 'stopped']]);
      expect(status.stderr).toContain(belongs('a'));

      const checked = await runCli(['--conf', second, 'check']);
      expect(checked.code).toBe(6);
      expect(checked.stderr).toContain(belongs('b'));

      const { system, sent } = recordSignals();
      const stopped = await runCli(['--conf', second, 'stop'], {}, system);
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stderr).toContain(belongs('a'));
      expect(stopped.stdout).not.toMatch(/^php-fpm-multi: (a|b): /m);
      expect(sent).toEqual([]);
      expect([isAlive(a), isAlive(b)]).toEqual([true, true]);
      expect(existsSync(join(sharedRun, 'a.record.json'))).toBe(true);
      expect(requestPhp(scratch, 'a')).toBe('hello from a');

      const own = await runCli(['--conf', first, 'status']);
      expect(own.code, own.stdout).toBe(0);
      expect(own.stderr).toBe('');
      expect((await runCli(['--conf', first, 'stop'])).code).toBe(0);
      expect(listFpmProcesses(scratch.dir)).toEqual([]);
    } finally {
      rmSync(sharedRun, { recursive: true, force: true });
    }
  }, 120_000);

  test('a second service copied with the first one’s FPM_run_dir: its stop stops only its own instance, check refuses the shared directory', async () => {
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    const a = masterPid(scratch, 'a');
    const web = join(scratch.dir, `${uniqueName()}.web`);
    onTestFinished(() => rmSync(`/run/php-fpm-multi/${basename(web)}`, { recursive: true, force: true }));
    writeFileSync(web, `FPM_slot_w="slot=8.2 config=${scratch.writeConfig('w')}"\nFPM_run_dir=${scratch.runDir}\n`);
    expect((await runCli(['--conf', web, 'start'])).code).toBe(0);
    const w = masterPid(scratch, 'w');
    const checked = await runCli(['--conf', web, 'check']);
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`${scratch.runDir}/a.record.json belongs to ${scratch.decl}, not ${web}`);
    expect((await cli('check')).stderr).toContain(`${scratch.runDir}/w.record.json belongs to ${web}, not ${scratch.decl}`);
    const { system, sent } = recordSignals();
    const stopped = await runCli(['--conf', web, 'stop'], {}, system);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`w: stopped (pid ${w})`);
    expect(sent.filter(([pid]) => pid === a)).toEqual([]);
    expect(isAlive(a)).toBe(true);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    const status = await cli('status');
    expect(status.code, status.stdout).toBe(0);
    expect((await cli('stop')).code).toBe(0);
  }, 120_000);

  test('records written before a record named its file are still this file’s (compatibility)', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const file = join(scratch.runDir, 'a.record.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(record['declaration']).toBe(scratch.decl);
    delete record['declaration'];
    writeFileSync(file, `${JSON.stringify(record)}\n`);
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/a: stopped \(pid \d+\)/);
  }, 120_000);
});

test('finding 2: a pidfile outside the run directory never makes another service’s master the successor of a crashed one', async () => {
  const pids = join(scratch.dir, 'pids');
  mkdirSync(pids, { mode: 0o755 });
  const config = scratch.writeConfig('t1');
  const line = `FPM_slot_t1="slot=8.2 config=${config} pidfile=${pids}/t1.pid"`;
  const j = join(scratch.dir, `${uniqueName()}.j`);
  const j2 = join(scratch.dir, `${uniqueName()}.j2`);
  // start remembers each file's run directory in its default one (/run/php-fpm-multi/<name>): removed at the end.
  onTestFinished(() => {
    for (const file of [j, j2]) rmSync(`/run/php-fpm-multi/${basename(file)}`, { recursive: true, force: true });
  });
  writeFileSync(j, `${line}\nFPM_run_dir=${scratch.dir}/run-j\n`);
  writeFileSync(j2, `${line}\nFPM_run_dir=${scratch.dir}/run-j2\n`);
  expect((await runCli(['--conf', j, 'start'])).code).toBe(0);
  const first = Number(readFileSync(join(pids, 't1.pid'), 'utf8'));
  expect((await runCli(['--conf', j2, 'start'])).code).toBe(1);
  process.kill(-first, 'SIGKILL'); // the master and its workers (its process group): a crash
  await waitGone(first);
  expect((await runCli(['--conf', j2, 'start'])).code).toBe(0);
  const second = Number(readFileSync(join(pids, 't1.pid'), 'utf8'));
  expect(second).not.toBe(first);

  const status = await runCli(['--conf', j, 'status']);
  expect(status.code, status.stdout).toBe(32);
  expect(status.stdout).toMatch(new RegExp(`^t1 +8\\.2 +crashed +${first} `, 'm'));
  expect(status.stdout).toContain(`now names pid ${second}, a php-fpm master of ${config} that php-fpm-multi cannot prove this file started`);
  const { system, sent } = recordSignals();
  const stopped = await runCli(['--conf', j, 'stop'], {}, system);
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(sent).toEqual([]);
  expect(isAlive(second)).toBe(true);
  expect(readFileSync(join(pids, 't1.pid'), 'utf8').trim()).toBe(String(second));
  const other = await runCli(['--conf', j2, 'status']);
  expect(other.code, other.stdout).toBe(0);
  expect(requestPhp(scratch, 't1')).toBe('hello from t1');
  expect((await runCli(['--conf', j2, 'stop'])).code).toBe(0);
}, 120_000);

describe('findings 3 and 9: the file’s last run directory is remembered for stop and status', () => {
  const breakages: Array<[string, (decl: string) => void]> = [
    ['a refused line before FPM_run_dir', (decl) => writeFileSync(decl, `X=$(id)\n${readFileSync(decl, 'utf8')}`)],
    ['an unterminated quote after FPM_run_dir', (decl) => writeFileSync(decl, `${readFileSync(decl, 'utf8')}Y="oops\n`)],
    ['a missing file', (decl) => rmSync(decl)],
  ];

  test.each(breakages)('%s: status reports and stop stops the instances of FPM_run_dir; with nothing recorded, status 4 and stop 1', async (_what, breakFile) => {
    const name = uniqueName();
    const defaultRun = `/run/php-fpm-multi/${name}`;
    const decl = join(scratch.dir, name);
    const runDir = join(scratch.dir, 'run-u');
    writeFileSync(decl, `FPM_slot_t2="slot=8.2 config=${scratch.writeConfig('t2')}"\nFPM_run_dir=${runDir}\n`);
    const run = (...args: string[]) => runCli(['--conf', decl, ...args]);
    try {
      expect((await run('start')).code).toBe(0);
      const master = Number(readFileSync(join(runDir, 't2.pid'), 'utf8'));
      breakFile(decl);
      const status = await run('--json', 'status');
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout).instances.map((i: { name: string; state: string }) => [i.name, i.state])).toEqual([['t2', 'running']]);
      expect(status.stderr).toContain(`records of t2 are in ${runDir}: ${decl} is unusable, and its last start used ${runDir}; acting on them there`);
      const stopped = await run('stop');
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toContain(`t2: stopped (pid ${master})`);
      expect(isAlive(master)).toBe(false);
      // Nothing of it left there: the pointer has served and is gone.
      expect(readdirSync(defaultRun)).toEqual([]);

      // Nothing recorded anywhere: what runs cannot be told, and a shutdown must not look clean.
      const unknown = await run('status');
      expect(unknown.code).toBe(4);
      expect(unknown.stderr).toContain(`cannot tell what runs: ${decl} is unusable and no records were found`);
      const failed = await run('stop');
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(`cannot tell what runs: ${decl} is unusable and no records were found`);
      expect(readdirSync(defaultRun)).toEqual([]); // finding 10g: nothing created (no lock)
    } finally {
      rmSync(defaultRun, { recursive: true, force: true });
    }
  }, 120_000);

  test('finding 9: FPM_run_dir edited while instances run: status and stop still reach them, and say why', async () => {
    const name = uniqueName();
    const defaultRun = `/run/php-fpm-multi/${name}`;
    const decl = join(scratch.dir, name);
    const oldRun = join(scratch.dir, 'run-old');
    const newRun = join(scratch.dir, 'run-new');
    const line = `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\nFPM_slot_b="slot=8.2 config=${scratch.writeConfig('b')}"\n`;
    writeFileSync(decl, `${line}FPM_run_dir=${oldRun}\n`);
    const run = (...args: string[]) => runCli(['--conf', decl, ...args]);
    try {
      expect((await run('start')).code).toBe(0);
      const a = Number(readFileSync(join(oldRun, 'a.pid'), 'utf8'));
      writeFileSync(decl, `${line}FPM_run_dir=${newRun}\n`);
      const why = `FPM_run_dir changed while instances run (its last start used ${oldRun}; the file now names ${newRun})`;
      const status = await run('--json', 'status');
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout).instances.map((i: { name: string; state: string; pid: number }) => [i.name, i.state, i.pid])).toEqual([
        ['a', 'running', a], ['b', 'running', expect.any(Number)],
      ]);
      expect(status.stderr).toContain(`records of a, b are in ${oldRun}: ${why}; acting on them there`);
      const stopped = await run('stop');
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toContain(`a: stopped (pid ${a})`);
      expect(stopped.stdout).toMatch(/b: stopped \(pid \d+\)/);
      expect(listFpmProcesses(scratch.dir)).toEqual([]);
      expect(readdirSync(oldRun).filter((f) => f.endsWith('.record.json'))).toEqual([]);
      expect(existsSync(newRun)).toBe(false); // finding 10g: stop created nothing there
      const after = await run('status');
      expect(after.code).toBe(3);
      expect(after.stderr).toBe('');
    } finally {
      rmSync(defaultRun, { recursive: true, force: true });
    }
  }, 120_000);
});

test('finding 9: FPM_run_dir set while instances started in the default run directory run: stop and status still reach them', async () => {
  const name = uniqueName();
  const defaultRun = `/run/php-fpm-multi/${name}`;
  onTestFinished(() => rmSync(defaultRun, { recursive: true, force: true }));
  const decl = join(scratch.dir, name);
  const line = `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\n`;
  writeFileSync(decl, line);
  const run = (...args: string[]) => runCli(['--conf', decl, ...args]);
  expect((await run('start')).code).toBe(0);
  const a = Number(readFileSync(join(defaultRun, 'a.pid'), 'utf8'));
  writeFileSync(decl, `${line}FPM_run_dir=${scratch.runDir}\n`);
  const status = await run('status');
  expect(status.code, status.stderr).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^a +8\\.2 +running +${a} `, 'm'));
  expect(status.stderr).toContain(`records of a are in ${defaultRun}: FPM_run_dir changed while instances run`);
  const stopped = await run('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: stopped (pid ${a})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
  const after = await run('status');
  expect(after.code).toBe(3);
  expect(after.stderr).toBe('');
}, 120_000);

test('finding 5: a renamed instance: check names the old record, and restart refuses before stopping anything', async () => {
  const config = scratch.writeConfig('t1');
  scratch.declare(`FPM_slot_t1="slot=8.2 config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const t1 = masterPid(scratch, 't1');
  scratch.declare(`FPM_slot_web1="slot=8.2 config=${config}"`);
  const checked = await cli('check');
  expect(checked.code).toBe(6);
  expect(checked.stderr).toContain(`recorded by ${scratch.decl} as t1 (its old name, no longer declared), so it is not this instance's: run php-fpm-multi stop t1 first, then start`);
  expect(checked.stderr).not.toContain('kill -QUIT');
  const { system, sent } = recordSignals();
  const restarted = await runCli(['--conf', scratch.decl, 'restart'], {}, system);
  expect(restarted.code).toBe(1);
  expect(restarted.stderr).toContain(`web1: the address is held by t1 (pid ${t1}), recorded by ${scratch.decl} under its old name: run php-fpm-multi stop t1 first`);
  expect(sent).toEqual([]);
  expect(isAlive(t1)).toBe(true);
  expect(requestPhp(scratch, 't1')).toBe('hello from t1');
  // The advice works.
  expect((await cli('stop', 't1')).code).toBe(0);
  const started = await cli('start');
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).toMatch(/web1: started \(pid \d+\)/);
}, 120_000);

test('finding 6: stop of an instance whose record is unreadable while its pidfile names a live master fails, naming both', async () => {
  const pids = join(scratch.dir, 'pids');
  mkdirSync(pids, { mode: 0o755 });
  const config = scratch.writeConfig('t1');
  scratch.declare(`FPM_slot_t1="slot=8.2 config=${config} pidfile=${pids}/t1.pid"`);
  expect((await cli('start')).code).toBe(0);
  const master = Number(readFileSync(join(pids, 't1.pid'), 'utf8'));
  const record = join(scratch.runDir, 't1.record.json');
  writeFileSync(record, '{"name":"t1",');
  expect((await cli('status')).code).toBe(4);
  const { system, sent } = recordSignals();
  const stopped = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(stopped.code).toBe(1);
  expect(stopped.stderr).toContain(
    `t1: not stopped: its record ${record} cannot be read, and ${pids}/t1.pid names a live php-fpm master of ${config} (pid ${master}) that php-fpm-multi cannot prove it started, so it was not signalled: if it is this instance, stop it with kill -QUIT ${master}; then remove ${record}`,
  );
  expect(stopped.stdout).not.toContain('not running');
  expect(sent).toEqual([]);
  expect(isAlive(master)).toBe(true);
  // The advice works.
  process.kill(master, 'SIGQUIT');
  await waitGone(master);
  rmSync(record);
  expect((await cli('stop')).code).toBe(0);
  expect((await cli('status')).code).toBe(3);
}, 120_000);

describe('finding 10a: stop on a read-only run directory', () => {
  let mounted = false;
  afterEach(() => {
    if (mounted) spawnSync('umount', ['-l', scratch.runDir]);
    mounted = false;
  });

  test('warns only for files that exist, says what status will show, and a second stop once writable clears it', async () => {
    mkdirSync(scratch.runDir, { mode: 0o755 });
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0755', 'tmpfs', scratch.runDir], { encoding: 'utf8' });
    expect(mount.status, mount.stderr).toBe(0);
    mounted = true;
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const a = masterPid(scratch, 'a');
    expect(spawnSync('mount', ['-o', 'remount,ro', scratch.runDir]).status).toBe(0);
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`a: stopped (pid ${a})`);
    expect(isAlive(a)).toBe(false);
    expect(stopped.stderr).not.toContain('failure.json');
    expect(stopped.stderr).toContain(
      `could not remove ${scratch.runDir}/a.record.json (read-only file system, EROFS): until it is removed, status shows a as crashed (exit 32) and start says it had crashed; once the file system is writable, run php-fpm-multi stop again: it clears it`,
    );
    expect((await cli('status')).code).toBe(32); // as the warning says
    expect(spawnSync('mount', ['-o', 'remount,rw', scratch.runDir]).status).toBe(0);
    const again = await cli('stop');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toBe('');
    expect((await cli('status')).code).toBe(3);
  }, 120_000);
});

test('finding 10c: status exits 1 while an orphan runs and no declared instance does', async () => {
  declareInstances(scratch, ['a', 'blog']);
  expect((await cli('start')).code).toBe(0);
  expect((await cli('stop', 'a')).code).toBe(0);
  writeFileSync(scratch.decl, readFileSync(scratch.decl, 'utf8').split('\n').filter((line) => !line.startsWith('FPM_slot_blog')).join('\n'));
  const status = await cli('status');
  expect(status.code, status.stdout).toBe(1);
  expect(status.stdout).toMatch(/^blog +- +orphan +\d+ /m);
  expect((await cli('stop')).code).toBe(0);
  expect((await cli('status')).code).toBe(3);
}, 120_000);

test('finding 10g: stop and status of a file never started create no run directory and no lock', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('stop')).code).toBe(0);
  expect((await cli('status')).code).toBe(3);
  expect(existsSync(scratch.runDir)).toBe(false);
  mkdirSync(scratch.runDir, { mode: 0o755 });
  expect((await cli('stop')).code).toBe(0);
  expect(readdirSync(scratch.runDir)).toEqual([]);
  // A missing file without FPM_run_dir: its default run directory is not created either.
  const missing = join(scratch.dir, uniqueName());
  expect((await runCli(['--conf', missing, 'stop'])).code).toBe(1);
  expect(existsSync(`/run/php-fpm-multi/${basename(missing)}`)).toBe(false);
}, 120_000);

// Tryout 3: a pointer left by an earlier start with that FPM_run_dir hid the default directory's records.
test('finding 9, after a pointer to the same FPM_run_dir was left by an earlier start: stop still reaches what runs in the default run directory', async () => {
  const name = uniqueName();
  const defaultRun = `/run/php-fpm-multi/${name}`;
  onTestFinished(() => rmSync(defaultRun, { recursive: true, force: true }));
  const decl = join(scratch.dir, name);
  const line = `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\n`;
  const run = (...args: string[]) => runCli(['--conf', decl, ...args]);
  writeFileSync(decl, `${line}FPM_run_dir=${scratch.runDir}\n`);
  expect((await run('start')).code).toBe(0); // remembers scratch.runDir in the default run directory
  expect((await run('stop')).code).toBe(0); // the pointer stays: it names where the file's records go
  writeFileSync(decl, line);
  expect((await run('start')).code).toBe(0); // now in the default run directory
  const a = Number(readFileSync(join(defaultRun, 'a.pid'), 'utf8'));
  writeFileSync(decl, `${line}FPM_run_dir=${scratch.runDir}\n`);
  const stopped = await run('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: stopped (pid ${a})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
}, 120_000);
