// Tryout (confirmed): a restart's socket hand-over bound a new socket at a hidden name in the
// listen path's directory and then chowned and chmodded it by path, as root. In a directory
// www-data may write (Debian's /run/php, a user= instance's), www-data renamed a symlink over that
// name in between, and root gave the symlink's target (a root-only 0600 file) the socket's owner
// and mode. Now a restart hands over only in a directory only root may write; elsewhere it stops
// and starts, saying why, and `check` warns that php-fpm itself (root) binds and chowns there.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import { requestFastCgi } from '../../src/fastcgi/client.js';
import { buildGetParams } from '../../src/fastcgi/params.js';
import { runCli } from '../helpers/cli.js';
import { makeFpmScratch, masterPid, PHP_FPM, requirePrograms, type FpmScratch } from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

const WWW_DATA_UID = 33;
const WAIT_MS = 60_000;
const SETPRIV = '/usr/bin/setpriv';

let scratch: FpmScratch;
let attacker: ChildProcess | null = null;
beforeAll(() => requirePrograms(PHP_FPM, SETPRIV));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => {
  // Only the loop this test started: its whole process group (the shell and its ln/mv).
  if (attacker?.pid !== undefined && attacker.exitCode === null) process.kill(-attacker.pid, 'SIGKILL');
  attacker = null;
  scratch.remove();
});

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** Instance `a` whose socket lives in a directory www-data owns (as Debian's /run/php). */
function declareInWwwDataDir(): { sockDir: string; socket: string } {
  const sockDir = join(scratch.dir, 'wsock');
  mkdirSync(sockDir, { mode: 0o755 });
  chownSync(sockDir, WWW_DATA_UID, WWW_DATA_UID);
  const socket = join(sockDir, 'a.sock');
  mkdirSync(join(scratch.dir, 'a'), { mode: 0o755 });
  const config = join(scratch.dir, 'a', 'php-fpm.conf');
  writeFileSync(config, [
    '[global]', `error_log = ${join(scratch.dir, 'a', 'error.log')}`, 'process_control_timeout = 10s', '',
    '[a]', 'user = www-data', 'group = www-data', `listen = ${socket}`, 'listen.mode = 0660',
    'pm = static', 'pm.max_children = 2', 'ping.path = /ping', '',
  ].join('\n'));
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  return { sockDir, socket };
}

async function serves(socket: string): Promise<boolean> {
  const response = await requestFastCgi({ kind: 'unix', path: socket }, { params: buildGetParams('/index.php', { documentRoot: scratch.dir }), timeoutMs: WAIT_MS });
  return response.status === 200;
}

test('restart of an instance whose socket directory www-data owns stops and starts it, saying why; check warns', async () => {
  const { sockDir, socket } = declareInWwwDataDir();
  const checked = await cli('check');
  expect(checked.code, checked.stderr).toBe(0);
  expect(checked.stdout + checked.stderr).toContain(
    `${sockDir} is owned by uid ${WWW_DATA_UID}, not root. php-fpm runs as root and binds, chowns and chmods its socket there by path`,
  );
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  const restarted = await cli('restart');
  expect(restarted.code, restarted.stderr).toBe(0);
  expect(restarted.stdout).toContain(
    `(not handed over: ${sockDir} is owned by uid ${WWW_DATA_UID}, not root: another user may write there, and could swap a symlink in for the new socket before it is chowned; restarted by stop and start)`,
  );
  expect(restarted.stdout).not.toContain('listening sockets handed over');
  expect(masterPid(scratch, 'a')).not.toBe(before);
  expect(await serves(socket)).toBe(true);
  // --rolling decides the same way.
  const rolled = await cli('restart', '--rolling');
  expect(rolled.code, rolled.stderr).toBe(0);
  expect(rolled.stdout).toContain('not handed over: ');
  expect(await serves(socket)).toBe(true);
  expect((await cli('stop')).code).toBe(0);
});

test('www-data renaming symlinks to a root-only file over the hand-over name while restart runs changes nothing of that file', async () => {
  const { sockDir, socket } = declareInWwwDataDir();
  const victim = join(scratch.dir, 'victim');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  expect((await cli('start')).code).toBe(0);
  // The name a hand-over by this process (runCli runs in it) would bind: known to the attacker too.
  const name = join(sockDir, `.a.sock.handover-${process.pid}`);
  const planted = join(sockDir, '.planted');
  attacker = spawn(SETPRIV, ['--reuid=33', '--regid=33', '--clear-groups', '--', '/bin/sh', '-c',
    `while :; do ln -s '${victim}' '${planted}' 2>/dev/null; mv -fT '${planted}' '${name}' 2>/dev/null; rm -f '${name}'; done`], { detached: true, stdio: 'ignore' });
  // The loop runs: its symlink shows up at the name (a condition, waited for generously).
  await until('the attacker loop to plant its symlink', async () => {
    try {
      return lstatSync(name).isSymbolicLink();
    } catch {
      return false;
    }
  }, WAIT_MS);
  for (let round = 0; round < 3; round += 1) {
    const restarted = await cli('restart');
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stdout).toContain('not handed over: ');
    const stat = statSync(victim);
    expect({ uid: stat.uid, gid: stat.gid, mode: stat.mode & 0o7777 }).toEqual({ uid: 0, gid: 0, mode: 0o600 });
  }
  expect(await serves(socket)).toBe(true);
  expect((await cli('stop')).code).toBe(0);
});

test('check warns when socket_dir_owner= would give a root-run instance\'s socket directory to another user', async () => {
  const config = scratch.writeConfig('a');
  const socket = join(scratch.dir, 'made', 'a.sock');
  writeFileSync(config, readFileSync(config, 'utf8').replace(`listen = ${scratch.socket('a')}`, `listen = ${socket}`));
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config} socket_dir_owner=www-data"`);
  const checked = await cli('check');
  expect(checked.code, checked.stderr).toBe(0);
  expect(checked.stdout + checked.stderr).toContain(`start will give it to www-data, so that user may write it. php-fpm runs as root`);
  // Without socket_dir_owner= the directory will be root's: no warning.
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  const clean = await cli('check');
  expect(clean.stdout + clean.stderr).not.toContain('php-fpm runs as root and binds');
});
