// Masters as other users (issue 14, item 3): user= runs an instance's php-fpm as that user, as a
// systemd `User=%i` template would, with real php8.2-fpm and a user created for the test.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { isAlive } from '../helpers/processes.js';
import { CGI_FCGI, CLI, listFpmProcesses, makeFpmScratch, PHP_FPM, requestPhp, requirePrograms, type FpmScratch } from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

/** Unique to this file: parallel engineers and test files never share it. */
const USER = 'pfm_users_t1';
const USERADD = '/usr/sbin/useradd';
const USERDEL = '/usr/sbin/userdel';
let uid = -1;
let gid = -1;

function run(program: string, args: string[], options: { uid?: number; gid?: number } = {}): { status: number | null; out: string } {
  const result = spawnSync(program, args, { encoding: 'utf8', timeout: 60_000, ...options });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

beforeAll(() => {
  requirePrograms(PHP_FPM, CGI_FCGI, USERADD, USERDEL, '/usr/bin/setpriv', '/usr/bin/getent');
  run(USERDEL, [USER]); // a leftover of an interrupted run
  // In www-data too: a supplementary group must reach php-fpm (initgroups), as a socket directory's group would need.
  const added = run(USERADD, ['--system', '--user-group', '--groups', 'www-data', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  expect(added.status, added.out).toBe(0);
  const ids = run('/usr/bin/id', [USER]).out;
  uid = Number(/uid=(\d+)/.exec(ids)?.[1]);
  gid = Number(/gid=(\d+)/.exec(ids)?.[1]);
  expect(uid).toBeGreaterThan(0);
});
afterAll(() => {
  const removed = run(USERDEL, [USER]);
  expect(removed.status, removed.out).toBe(0);
});

let scratch: FpmScratch;
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** A config for `name` whose socket directory and error_log belong to the test user (or, `logOwnedByRoot`, whose error_log is root's). */
function writeUserConfig(name: string, { logOwnedByRoot = false } = {}): { config: string; log: string } {
  const config = scratch.writeConfig(name, 'ping.path = /ping');
  chownSync(join(scratch.dir, name), uid, gid); // the socket directory: php-fpm binds there as the user
  const log = logOwnedByRoot ? join(scratch.dir, 'logs', `${name}.log`) : join(scratch.dir, name, 'error.log');
  if (logOwnedByRoot) {
    mkdirSync(join(scratch.dir, 'logs'), { mode: 0o755 });
    writeFileSync(log, '', { mode: 0o644 });
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^error_log = .*$/m, `error_log = ${log}`));
  }
  return { config, log };
}

/** The supplementary groups of a process, from /proc. */
function groupsOf(pid: number): number[] {
  return (/^Groups:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
}

/** The real and effective uid of a process, from /proc. */
function ownerOf(pid: number): [number, number] {
  const match = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return [Number(match?.[1]), Number(match?.[2])];
}

const pidfileOf = (name: string): string => join(scratch.runDir, `${name}.d`, `${name}.pid`);
const recordedPid = (name: string): number => Number(JSON.parse(readFileSync(join(scratch.runDir, `${name}.record.json`), 'utf8')).pid);

/** Writes `content` into `file` as the test user, as a user who wants root to signal something would. */
function writeAsUser(file: string, content: string): void {
  const written = run('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', '/bin/sh', '-c', 'printf %s "$1" > "$2"', 'sh', content, file]);
  expect(written.status, written.out).toBe(0);
}

describe('user=: a master as another user', () => {
  test('start runs the master and its pools as the user; they serve; status, reload and stop work', async () => {
    writeUserConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${join(scratch.dir, 'a', 'php-fpm.conf')} user=${USER}"`);
    const checked = await cli('check');
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);
    // The pool's own `user = www-data` is ignored by a master that is not root: said, not refused.
    expect(checked.stdout + checked.stderr).toContain(`sets user = www-data, which php-fpm ignores when it runs as user ${USER}`);

    const started = await cli('start');
    expect(started.code, started.stdout + started.stderr).toBe(0);
    const pid = recordedPid('a');
    expect(ownerOf(pid)).toEqual([uid, uid]);
    expect(groupsOf(pid)).toEqual(expect.arrayContaining([gid, Number(run('/usr/bin/getent', ['group', 'www-data']).out.split(':')[2])]));
    // Workers are forked after the master confirmed start-up: waited for, both.
    const workers = await until('both workers', async () => {
      const found = listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: pool'));
      return found.length === 2 ? found : null;
    }, 30_000);
    for (const worker of workers) expect(ownerOf(worker.pid)).toEqual([uid, uid]);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    // Its pidfile lives in a directory of the user's; the record stays root's, in root's run directory.
    expect(statSync(join(scratch.runDir, 'a.d'))).toMatchObject({ uid, gid });
    expect(Number(readFileSync(pidfileOf('a'), 'utf8'))).toBe(pid);
    expect(statSync(join(scratch.runDir, 'a.record.json')).uid).toBe(0);
    expect(statSync(scratch.runDir)).toMatchObject({ uid: 0, mode: expect.any(Number) });
    expect(statSync(scratch.runDir).mode & 0o777).toBe(0o755);

    const status = await cli('status');
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/running/);
    // The user's pidfile directory in the run directory is no problem of check's.
    const checkedRunning = await cli('check');
    expect(checkedRunning.code, checkedRunning.stdout + checkedRunning.stderr).toBe(0);

    const reloaded = await cli('reload');
    expect(reloaded.code, reloaded.stdout + reloaded.stderr).toBe(0);
    const after = recordedPid('a');
    expect(ownerOf(after)).toEqual([uid, uid]);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');

    const restarted = await cli('restart');
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0);
    expect(ownerOf(recordedPid('a'))).toEqual([uid, uid]);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');

    const stopped = await cli('stop');
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect((await cli('status')).code).toBe(3);
  });

  test('a missing socket directory is created for the user, who binds there', async () => {
    const { config } = writeUserConfig('a');
    const socketDir = join('/run', `pfm-users-sockets-${process.pid}`, 'a');
    rmSync(dirname(socketDir), { recursive: true, force: true });
    const socket = join(socketDir, 'a.sock');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^listen = .*$/m, `listen = ${socket}`));
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config} user=${USER}"`);
    try {
      const checked = await cli('check');
      expect(checked.code, checked.stdout + checked.stderr).toBe(0);
      expect(checked.stdout + checked.stderr).toContain(`start will create it (with ${dirname(socketDir)}), ${USER} 0755`);
      expect(existsSync(dirname(socketDir))).toBe(false);

      const started = await cli('start');
      expect(started.code, started.stdout + started.stderr).toBe(0);
      expect(started.stdout).toContain(`created ${socketDir} (${USER}:root 0755) for pool 'a' of instance 'a'`);
      expect(statSync(socketDir)).toMatchObject({ uid, gid: 0 });
      expect(statSync(dirname(socketDir))).toMatchObject({ uid: 0, gid: 0 });
      expect(statSync(socket).uid).toBe(uid);
      const served = spawnSync(CGI_FCGI, ['-bind', '-connect', socket], {
        env: { SCRIPT_FILENAME: join(scratch.dir, 'index.php'), REQUEST_METHOD: 'GET', SCRIPT_NAME: '/index.php' }, encoding: 'utf8', timeout: 10_000,
      });
      expect(served.stdout).toContain('hello from a');
      const stopped = await cli('stop');
      expect(stopped.code, stopped.stdout + stopped.stderr).toBe(0);
    } finally {
      await cli('stop');
      rmSync(dirname(socketDir), { recursive: true, force: true });
    }
  });

  test('a pidfile the user rewrote to name another process never gets that process signalled', async () => {
    writeUserConfig('a');
    scratch.writeConfig('b');
    scratch.declare([
      `FPM_slot_a="slot=8.2 config=${join(scratch.dir, 'a', 'php-fpm.conf')} user=${USER}"`,
      `FPM_slot_b="slot=8.2 config=${join(scratch.dir, 'b', 'php-fpm.conf')}"`,
    ].join('\n'));
    const started = await cli('start');
    expect(started.code, started.stdout + started.stderr).toBe(0);
    const rootMaster = recordedPid('b');
    expect(ownerOf(rootMaster)).toEqual([0, 0]);

    // 1. While the user's master runs: the record decides; stop ends the user's master only.
    writeAsUser(pidfileOf('a'), String(rootMaster));
    const stopped = await cli('stop', 'a');
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(0);
    expect(isAlive(rootMaster)).toBe(true);
    expect(requestPhp(scratch, 'b')).toBe('hello from b');

    // 2. After the user's master died (its user may kill it): the pidfile names root's master.
    const again = await cli('start', 'a');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const userMaster = recordedPid('a');
    process.kill(-userMaster, 'SIGKILL'); // the master and its workers (its process group), as a crash or its user would
    await until('the user\'s master and workers to be gone', async () => listFpmProcesses(join(scratch.dir, 'a')).length === 0, 30_000);
    // The hardest lie: a root master of the very binary and config, started after the user's:
    // only its owner tells it apart from a successor, and the owner is checked.
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    const byHand = run(PHP_FPM, ['--fpm-config', config, '--pid', join(scratch.dir, 'by-hand.pid'), '--daemonize']);
    expect(byHand.status, byHand.out).toBe(0);
    const impostor = Number(readFileSync(join(scratch.dir, 'by-hand.pid'), 'utf8'));
    expect(ownerOf(impostor)).toEqual([0, 0]);
    writeAsUser(pidfileOf('a'), String(impostor));
    const status = await cli('status', 'a');
    expect(status.code).not.toBe(0);
    expect(status.stdout + status.stderr).toContain(`runs as uid 0 (effective 0), not ${uid}`);
    const stop = await cli('stop', 'a');
    expect(stop.stdout + stop.stderr).toContain(`runs as uid 0 (effective 0), not ${uid}`);
    expect(stop.stdout + stop.stderr).toContain('nothing was signalled');
    expect(isAlive(impostor)).toBe(true);
    process.kill(-impostor, 'SIGKILL');
    await until('the hand-started master to be gone', async () => !isAlive(impostor), 30_000);

    // Without a record (stop forgot the dead master), a pidfile naming root's other master proves nothing.
    writeAsUser(pidfileOf('a'), String(rootMaster));
    expect((await cli('status', 'a')).code).toBe(3);
    const stopNothing = await cli('stop', 'a');
    expect(stopNothing.code, stopNothing.stdout + stopNothing.stderr).toBe(0);
    expect(isAlive(rootMaster)).toBe(true);
    expect(recordedPid('b')).toBe(rootMaster);
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
    // 3. A new start of the user's instance sets the lie aside and starts it again, as the user.
    writeAsUser(pidfileOf('a'), String(rootMaster));
    const restarted = await cli('start', 'a');
    expect(restarted.code, restarted.stdout + restarted.stderr).toBe(0);
    expect(ownerOf(recordedPid('a'))).toEqual([uid, uid]);
    expect(isAlive(rootMaster)).toBe(true);
    expect((await cli('stop')).code).toBe(0);
  });

  test('check reports an error_log the user cannot write, with a fix that works when followed', async () => {
    const { log } = writeUserConfig('a', { logOwnedByRoot: true });
    scratch.declare(`FPM_slot_a="slot=8.2 config=${join(scratch.dir, 'a', 'php-fpm.conf')} user=${USER}"`);
    const checked = await cli('check');
    expect(checked.code).not.toBe(0);
    const text = checked.stdout + checked.stderr;
    expect(text).toContain(`user ${USER} (user=) cannot write the error_log ${log}`);
    const fix = new RegExp(`touch ${log} && chown ${USER}:${USER} ${log}`).exec(text)?.[0];
    expect(fix, text).toBeDefined();
    const refused = await cli('start');
    expect(refused.code).not.toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);

    const followed = run('/bin/sh', ['-c', fix!]);
    expect(followed.status, followed.out).toBe(0);
    const rechecked = await cli('check');
    expect(rechecked.code, rechecked.stdout + rechecked.stderr).toBe(0);
    const started = await cli('start');
    expect(started.code, started.stdout + started.stderr).toBe(0);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect((await cli('stop')).code).toBe(0);
  });

  test('check reports a listen.owner or listen.group the user cannot give its socket, with fixes that work when followed', async () => {
    const { config } = writeUserConfig('a');
    writeFileSync(config, `${readFileSync(config, 'utf8')}listen.owner = www-data\nlisten.group = nogroup\nlisten.mode = 0660\n`);
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config} user=${USER}"`);
    const checked = await cli('check');
    expect(checked.code).not.toBe(0);
    const text = checked.stdout + checked.stderr;
    expect(text).toContain(`listen.owner = www-data, but php-fpm, running as user ${USER} (user=), cannot chown its socket there`);
    expect(text).toContain(`listen.group = nogroup, a group user ${USER} is not in`);
    // php-fpm's own test lets both through; its start would exit 70.
    const fpmTest = run('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', PHP_FPM, '--test', '--fpm-config', config]);
    expect(fpmTest.status, fpmTest.out).toBe(0);

    writeFileSync(config, readFileSync(config, 'utf8').replace('listen.owner = www-data\n', ''));
    const usermod = new RegExp(`usermod -aG nogroup ${USER}`).exec(text)?.[0];
    expect(usermod, text).toBeDefined();
    const followed = run('/bin/sh', ['-c', usermod!]);
    expect(followed.status, followed.out).toBe(0);
    const rechecked = await cli('check');
    expect(rechecked.code, rechecked.stdout + rechecked.stderr).toBe(0);
    const started = await cli('start');
    expect(started.code, started.stdout + started.stderr).toBe(0);
    expect(statSync(scratch.socket('a')).gid).toBe(Number(run('/usr/bin/getent', ['group', 'nogroup']).out.split(':')[2]));
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect((await cli('stop')).code).toBe(0);
  });

  test('check reports an unknown user and a socket directory the user cannot write', async () => {
    scratch.writeConfig('a'); // its directory (socket, error_log) stays root's
    scratch.declare([
      `FPM_slot_a="slot=8.2 config=${join(scratch.dir, 'a', 'php-fpm.conf')} user=${USER}"`,
      `FPM_slot_b="slot=8.2 config=${scratch.writeConfig('b')} user=pfm_users_nobody"`,
    ].join('\n'));
    const checked = await cli('check');
    expect(checked.code).not.toBe(0);
    const text = checked.stdout + checked.stderr;
    expect(text).toContain(`user ${USER} (user=) cannot create sockets in ${join(scratch.dir, 'a')}, where php-fpm binds as that user: chown ${USER}:${USER} ${join(scratch.dir, 'a')}`);
    expect(text).toContain('user=pfm_users_nobody: no such user (getent passwd pfm_users_nobody finds nothing)');
  });

  test('an ordinary controller cannot run php-fpm as another user: needs root, exit 4', () => {
    const home = join(scratch.dir, 'home');
    mkdirSync(home, { mode: 0o755 });
    chownSync(home, uid, gid);
    const decl = join(home, 'php-fpm');
    writeFileSync(decl, `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')} user=www-data"\nFPM_run_dir=${join(home, 'run')}\n`);
    chownSync(decl, uid, gid);
    const started = run(process.execPath, [CLI, '--conf', decl, 'start'], { uid, gid });
    expect(started.status, started.out).toBe(4);
    expect(started.out).toContain('only root can run php-fpm as another user or group');
    expect(existsSync(join(home, 'run', 'a.record.json'))).toBe(false);
  });
});
