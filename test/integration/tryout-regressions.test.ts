// What the adversarial tryout found on main after issues 9 and 10 (/work/wt/tryout-findings.md),
// against the real php8.2-fpm. Each test names its finding. The rules (README "Safety"): only what
// this declaration file started (its record), or what its own launch created (its launch intent,
// a pidfile in its own run directory), is ever signalled; everything check reports, reload and
// restart check before they signal or stop anything.
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { fill, mountTmpfs } from '../helpers/filesystems.js';
import { isAlive, recordSignals } from '../helpers/processes.js';
import {
  CGI_FCGI, CLI, declareInstances, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms, type FpmScratch,
} from '../helpers/fpm.js';

const NOBODY = 65534;
const WWW_DATA = 33;

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, '/usr/sbin/runuser', '/usr/bin/mount', '/usr/bin/mkfifo'));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** Runs php-fpm by hand, as an admin or a per-slot init script would; returns the master's pid. */
function startByHand(config: string, pidfile: string): number {
  const run = spawnSync(PHP_FPM, ['--fpm-config', config, '--pid', pidfile, '--daemonize'], { encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr + run.stdout).toBe(0);
  return Number(readFileSync(pidfile, 'utf8'));
}

const configOf = (name: string) => join(scratch.dir, name, 'php-fpm.conf');
const recordFile = (name: string) => join(scratch.runDir, `${name}.record.json`);

/** The honest refusal for a master this file cannot prove it started (finding 1 and 8a). */
const withoutRecord = (config: string, pid: number, file: string) =>
  `a php-fpm master of ${config} runs (pid ${pid}) without a record of ${file}, so php-fpm-multi cannot tell it started it and leaves it alone: ` +
  `stop it the way it was started (kill -QUIT ${pid} for one started by hand) or remove the duplicate declaration, then run start`;

/** A root-owned directory for pidfiles outside any run directory (as /run/pfm-pids in the tryout). */
function makePidDirectory(): string {
  const dir = join(scratch.dir, 'pids');
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

describe('finding 1: a pidfile outside the run directory proves nothing', () => {
  test('a second declaration file with the same explicit pidfile= neither adopts nor stops the first one’s instance', async () => {
    const pids = makePidDirectory();
    const config = scratch.writeConfig('a');
    const line = `FPM_slot_a="slot=8.2 config=${config} pidfile=${pids}/a.pid"`;
    scratch.declare(line);
    expect((await cli('start')).code).toBe(0);
    const master = Number(readFileSync(join(pids, 'a.pid'), 'utf8'));
    // The second service, copied literally (its own run directory, the same instance line).
    const web = join(scratch.dir, 'php-fpm.web');
    writeFileSync(web, `${line}\nFPM_run_dir=${scratch.dir}/run-web\n`);
    const { system, sent } = recordSignals();
    const started = await runCli(['--conf', web, 'start'], {}, system);
    expect(started.code, started.stdout).toBe(1);
    expect(started.stderr).toContain(`a: not started: ${withoutRecord(config, master, web)}`);
    expect(existsSync(join(scratch.dir, 'run-web', 'a.record.json'))).toBe(false);
    const stopped = await runCli(['--conf', web, 'stop'], {}, system);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`a: not running; ${withoutRecord(config, master, web)}`);
    expect(sent).toEqual([]);
    expect(isAlive(master)).toBe(true);
    const status = await cli('status');
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^a +8\\.2 +running +${master} `, 'm'));
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect((await cli('stop')).code).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('a hand-started master whose pidfile the declaration names (check’s own advice followed) is not adopted, stopped or reported as ours', async () => {
    const pids = makePidDirectory();
    const config = scratch.writeConfig('hand');
    const hand = startByHand(config, join(pids, 'hand.pid'));
    scratch.declare(`FPM_slot_hand="slot=8.2 config=${config} pidfile=${pids}/hand.pid"`);
    const { system, sent } = recordSignals();
    const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`hand: not started: ${withoutRecord(config, hand, scratch.decl)}`);
    expect(existsSync(recordFile('hand'))).toBe(false);
    const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
    expect(status.code, status.stdout).toBe(3);
    expect(status.stdout).toMatch(/^hand +8\.2 +stopped +- /m);
    expect(status.stdout).toContain(`hand: ${withoutRecord(config, hand, scratch.decl)}`);
    const stopped = await runCli(['--conf', scratch.decl, 'stop', 'hand'], {}, system);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`hand: not running; ${withoutRecord(config, hand, scratch.decl)}`);
    expect(sent).toEqual([]);
    expect(isAlive(hand)).toBe(true);
    expect(requestPhp(scratch, 'hand')).toBe('hello from hand');
  });
});

test('finding 2: reload refuses a listen collision that check reports, before any SIGUSR2', async () => {
  declareInstances(scratch, ['b', 'c']);
  expect((await cli('start')).code).toBe(0);
  const c = masterPid(scratch, 'c');
  writeFileSync(configOf('c'), readFileSync(configOf('c'), 'utf8').replace(`listen = ${scratch.socket('c')}`, `listen = ${scratch.socket('b')}`));
  const checked = await cli('check');
  expect(checked.code).toBe(6);
  expect(checked.stderr).toContain(`both listen on ${scratch.socket('b')}`);
  const { system, sent } = recordSignals();
  const reloaded = await runCli(['--conf', scratch.decl, 'reload', 'c'], {}, system);
  expect(reloaded.code, reloaded.stderr).toBe(6);
  expect(reloaded.stderr).toContain(`both listen on ${scratch.socket('b')}`);
  expect(reloaded.stderr).toContain('so none was reloaded');
  expect(sent).toEqual([]);
  expect(masterPid(scratch, 'c')).toBe(c);
  expect(isAlive(c)).toBe(true);
  expect(requestPhp(scratch, 'b')).toBe('hello from b');
});

describe('findings 3 and 4: a run directory php-fpm or the controller cannot write', () => {
  let mounted = false;
  afterEach(() => {
    if (!mounted) return;
    for (const proc of listFpmProcesses(scratch.dir)) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('umount', ['-l', scratch.runDir]);
    mounted = false;
  });

  function mountRunDir(): void {
    mountTmpfs(scratch.runDir);
    mounted = true;
  }

  test('finding 3: reload on a read-only run directory refuses before the signal, and every instance keeps serving', async () => {
    mountRunDir();
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    const a = masterPid(scratch, 'a');
    const b = masterPid(scratch, 'b');
    const remount = spawnSync('mount', ['-o', 'remount,ro', scratch.runDir], { encoding: 'utf8' });
    expect(remount.status, remount.stderr).toBe(0);
    const { system, sent } = recordSignals();
    const reloaded = await runCli(['--conf', scratch.decl, 'reload'], {}, system);
    expect(reloaded.code).toBe(1);
    for (const name of ['a', 'b']) {
      expect(reloaded.stderr).toContain(`${name}: not reloaded, the running master keeps serving: php-fpm could not rewrite its pidfile in ${scratch.runDir}: read-only file system (EROFS)`);
    }
    expect(reloaded.stderr).toContain('remount');
    expect(sent).toEqual([]);
    expect([isAlive(a), isAlive(b)]).toEqual([true, true]);
    expect([masterPid(scratch, 'a'), masterPid(scratch, 'b')]).toEqual([a, b]);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
  }, 120_000);

  test('finding 4: restart on a full run directory refuses before the stop, and the instance keeps serving', async () => {
    mountRunDir();
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const a = masterPid(scratch, 'a');
    fill(join(scratch.runDir, 'filler'));
    const { system, sent } = recordSignals();
    const restarted = await runCli(['--conf', scratch.decl, 'restart'], {}, system);
    expect(restarted.code).toBe(1);
    expect(restarted.stderr).toContain(`a: not restarted, left as it was: php-fpm could not rewrite its pidfile in ${scratch.runDir}: no space left on the device (ENOSPC)`);
    expect(sent).toEqual([]);
    expect(isAlive(a)).toBe(true);
    expect(masterPid(scratch, 'a')).toBe(a);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    // The reload is refused the same way.
    const reloaded = await runCli(['--conf', scratch.decl, 'reload'], {}, system);
    expect(reloaded.code).toBe(1);
    expect(reloaded.stderr).toContain('(ENOSPC)');
    expect(sent).toEqual([]);
  }, 120_000);
});

test('finding 5: a listen address another service’s instance holds: check names the holder, restart and start refuse before touching anything', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('start')).code).toBe(0);
  const a = masterPid(scratch, 'a');
  // The second service, with its own instance w.
  const web = join(scratch.dir, 'php-fpm.web');
  const webRun = join(scratch.dir, 'run-web');
  writeFileSync(web, `FPM_slot_w="slot=8.2 config=${scratch.writeConfig('w')}"\nFPM_run_dir=${webRun}\n`);
  expect((await runCli(['--conf', web, 'start'])).code).toBe(0);
  const w = Number(readFileSync(join(webRun, 'w.pid'), 'utf8'));
  writeFileSync(configOf('w'), readFileSync(configOf('w'), 'utf8').replace(`listen = ${scratch.socket('w')}`, `listen = ${scratch.socket('a')}`));
  const held = `${scratch.socket('a')} already has a listening socket, held by pid ${a} (php-fpm: master process (${configOf('a')}))`;
  const checked = await runCli(['--conf', web, 'check']);
  expect(checked.code).toBe(6);
  expect(checked.stderr).toContain(held);
  const { system, sent } = recordSignals();
  const restarted = await runCli(['--conf', web, 'restart'], {}, system);
  expect(restarted.code).toBe(1);
  expect(restarted.stderr).toContain(`w: not restarted, left as it was: pool 'w'`);
  expect(restarted.stderr).toContain(held);
  expect(sent).toEqual([]);
  expect(isAlive(w)).toBe(true);
  // Its own socket held by its own master is no problem: the first service still checks clean.
  expect((await cli('check')).code).toBe(0);
  expect((await cli('restart')).code).toBe(0);
  // A stopped w does not start on a's socket either: refused before php-fpm runs.
  expect((await runCli(['--conf', web, 'stop'])).code).toBe(0);
  const started = await runCli(['--conf', web, 'start']);
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`w: not started: pool 'w'`);
  expect(started.stderr).not.toContain('Another FPM instance');
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
}, 120_000);

test('finding 5, TCP: check and start name a program holding a pool’s port (IPv6 wildcard, read from /proc/net/tcp6)', async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '::', resolve)); // [::]:port, dual-stack: it covers 127.0.0.1:port too
  const port = (holder.address() as AddressInfo).port;
  try {
    const config = scratch.writeConfig('t');
    writeFileSync(config, readFileSync(config, 'utf8').replace(`listen = ${scratch.socket('t')}`, `listen = 127.0.0.1:${port}`));
    scratch.declare(`FPM_slot_t="slot=8.2 config=${config}"`);
    const held = `listen = 127.0.0.1:${port} already has a listening socket, held by pid ${process.pid} (`;
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(6);
    expect(checked.stderr).toContain(held);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`t: not started: pool 't'`);
    expect(started.stderr).toContain(held);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  } finally {
    holder.close();
  }
});

describe('finding 6: a launch intent whose pidfile names a master of its launch window counts as a record', () => {
  /** What a controller SIGKILLed mid-start leaves: its launch intent, and the master with its pidfile. */
  function leaveInterruptedLaunch(name: string): number {
    mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
    const uptimeTicks = Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);
    const pidfile = join(scratch.runDir, `${name}.pid`);
    writeFileSync(join(scratch.runDir, `${name}.launch.json`), JSON.stringify({
      name, binary: PHP_FPM, config: configOf(name), pidfile, uid: 0, launchTicks: uptimeTicks, deadlineTicks: uptimeTicks + 6000,
    }));
    return startByHand(configOf(name), pidfile);
  }

  test('removed from the file: status lists it, stop reaches it by name and without names', async () => {
    declareInstances(scratch, ['a', 'c', 'd']);
    const c = leaveInterruptedLaunch('c');
    const d = leaveInterruptedLaunch('d');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${configOf('a')}"`);
    const status = await cli('status');
    expect(status.stdout).toMatch(new RegExp(`^c +- +orphan +${c} `, 'm'));
    expect(status.stdout).toMatch(new RegExp(`^d +- +orphan +${d} `, 'm'));
    const byName = await cli('stop', 'c');
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toContain(`c: stopped (pid ${c})`);
    expect(isAlive(c)).toBe(false);
    expect(isAlive(d)).toBe(true);
    expect(existsSync(join(scratch.runDir, 'c.launch.json'))).toBe(false);
    const all = await cli('stop');
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(`d: stopped (pid ${d})`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect(existsSync(join(scratch.runDir, 'd.launch.json'))).toBe(false);
  });

  test('still declared: status says running, restart replaces it, stop stops it', async () => {
    declareInstances(scratch, ['c']);
    const c = leaveInterruptedLaunch('c');
    const status = await cli('status');
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^c +8\\.2 +running +${c} `, 'm'));
    const restarted = await cli('restart');
    expect(restarted.code, restarted.stderr).toBe(0);
    const successor = masterPid(scratch, 'c');
    expect(successor).not.toBe(c);
    expect(isAlive(c)).toBe(false);
    expect(existsSync(join(scratch.runDir, 'c.launch.json'))).toBe(false);
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`c: stopped (pid ${successor})`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });
});

test('finding 7: a declared instance this file never started does not fail stop, whatever its pidfile’s directory; the advice prefers /run/php-fpm-multi', async () => {
  const php = join(scratch.dir, 'php'); // as Debian's /run/php: www-data's, recreated by its service
  mkdirSync(php, { mode: 0o755 });
  chownSync(php, WWW_DATA, WWW_DATA);
  scratch.declare(`FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\nFPM_slot_p="slot=8.2 config=${scratch.writeConfig('p')} pidfile=${php}/x.pid"`);
  const started = await cli('start', '--partial');
  expect(started.code, started.stderr).toBe(0);
  expect(started.stderr).toContain(`p: not started: pidfile ${php}/x.pid: ${php} is owned by uid ${WWW_DATA}`);
  const advice = started.stderr.slice(started.stderr.indexOf('p: not started'));
  expect(advice).toContain('/run/php-fpm-multi');
  expect(advice.indexOf('/run/php-fpm-multi')).toBeLessThan(advice.indexOf('chown root') === -1 ? Infinity : advice.indexOf('chown root'));
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`p: not running; no record of ${scratch.decl}`);
  expect(stopped.stdout).toMatch(/a: stopped \(pid \d+\)/);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
  // The advice followed (pidfile= removed: the default in the run directory): it starts.
  scratch.declare(`FPM_slot_p="slot=8.2 config=${configOf('p')}"`);
  expect((await cli('start')).code).toBe(0);
  expect(requestPhp(scratch, 'p')).toBe('hello from p');
});

test('finding 8a: record and pidfile deleted while the master runs: start, status and stop name the master honestly and signal nothing', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'a');
  unlinkSync(recordFile('a'));
  unlinkSync(join(scratch.runDir, 'a.pid'));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`a: not started: ${withoutRecord(configOf('a'), master, scratch.decl)}`);
  expect(started.stderr).not.toContain('not started by');
  const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
  expect(status.stdout).toContain(`a: ${withoutRecord(configOf('a'), master, scratch.decl)}`);
  const stopped = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: not running; ${withoutRecord(configOf('a'), master, scratch.decl)}`);
  expect(sent).toEqual([]);
  expect(isAlive(master)).toBe(true);
});

test('finding 8b: a hand-started master of a declared config: check reports it, reload and stop name it instead of "start it"', async () => {
  declareInstances(scratch, ['deb']);
  const hand = startByHand(configOf('deb'), join(scratch.dir, 'hand.pid'));
  const expected = withoutRecord(configOf('deb'), hand, scratch.decl);
  const checked = await cli('check');
  expect(checked.code, checked.stdout).toBe(6);
  expect(checked.stderr).toContain(`FPM_slot_deb (line 1): ${expected}`);
  const { system, sent } = recordSignals();
  const reloaded = await runCli(['--conf', scratch.decl, 'reload'], {}, system);
  expect(reloaded.code).toBe(1);
  expect(reloaded.stderr).toContain(`deb: not reloaded: ${expected}`);
  expect(reloaded.stderr).not.toContain('start it');
  const stopped = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`deb: not running; ${expected}`);
  expect(sent).toEqual([]);
  expect(isAlive(hand)).toBe(true);
});

describe('finding 8c: what is planted in a trusted run directory', () => {
  test('a FIFO as the lock: check reports it, start and stop refuse with exit 6 (the run directory is unusable)', async () => {
    declareInstances(scratch, ['a']);
    mkdirSync(scratch.runDir, { mode: 0o755 });
    expect(spawnSync('/usr/bin/mkfifo', [join(scratch.runDir, 'lock')]).status).toBe(0);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`lock ${scratch.runDir}/lock: is not a regular file`);
    for (const command of ['start', 'stop', 'restart', 'reload']) {
      const result = await cli(command);
      expect(result.code, `${command}: ${result.stderr}`).toBe(6);
      expect(result.stderr).toContain(`lock ${scratch.runDir}/lock: is not a regular file`);
    }
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    // The advice followed: removed, start works.
    rmSync(join(scratch.runDir, 'lock'));
    expect((await cli('start')).code).toBe(0);
  });

  test('a record that is a FIFO: status says unknown (exit 4), not stopped', async () => {
    declareInstances(scratch, ['a', 'b']);
    mkdirSync(scratch.runDir, { mode: 0o755 });
    expect(spawnSync('/usr/bin/mkfifo', [recordFile('a')]).status).toBe(0);
    const status = await cli('status');
    expect(status.code, status.stdout).toBe(4);
    expect(status.stdout).toMatch(/^a +8\.2 +unknown/m);
    expect(status.stdout).toMatch(/^b +8\.2 +stopped/m);
    expect(status.stdout).toContain(`a: its record ${recordFile('a')} is unreadable`);
    // stop does not fail on it (nothing found through the pidfile), and says why.
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`a: not running as far as its pidfile tells; its record ${recordFile('a')} is unreadable`);
  });
});

test('finding 8d: list and check as an ordinary user on root’s file use root’s run directory, as status does', () => {
  const name = `php-fpm.tryout-${basename(scratch.dir)}`;
  const decl = join(scratch.dir, name);
  const runDir = `/run/php-fpm-multi/${name}`;
  const xdg = join(scratch.dir, 'xdg');
  mkdirSync(xdg, { mode: 0o700 });
  chownSync(xdg, NOBODY, NOBODY);
  writeFileSync(decl, `FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a')}"\n`); // root's, without FPM_run_dir
  const asNobody = (...args: string[]) => {
    const result = spawnSync('/usr/sbin/runuser', ['-u', 'nobody', '--', process.execPath, CLI, '--conf', decl, ...args], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'], XDG_RUNTIME_DIR: xdg },
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  try {
    const listed = asNobody('--json', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).instances[0].pidfile).toBe(`${runDir}/a.pid`);
    // root's run directory made untrusted: check (as root, and now as nobody too) reports it.
    mkdirSync(runDir, { recursive: true, mode: 0o777 });
    chmodSync(runDir, 0o777);
    expect((spawnSync(process.execPath, [CLI, '--conf', decl, 'check'], { encoding: 'utf8' })).status).toBe(6);
    const checked = asNobody('check');
    expect(checked.code, checked.stdout + checked.stderr).toBe(6);
    expect(checked.stderr).toContain(`run directory ${runDir}`);
    expect(checked.stderr).not.toContain(xdg);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});
