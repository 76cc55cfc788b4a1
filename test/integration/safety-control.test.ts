// The controller acts only on what it started (issue 9: cases 1, 5, 8, 9, 10; issue 10: the
// owner in identity, a full run directory), against the real php8.2-fpm. Each test names its case.
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import type { UsableInstance } from '../../src/model/invocation.js';
import { createRealSystem, type System } from '../../src/process/system.js';
import { runCli } from '../helpers/cli.js';
import { fill } from '../helpers/filesystems.js';
import { isAlive, recordSignals } from '../helpers/processes.js';
import {
  CGI_FCGI, CLI, declareInstances, hideListeningSockets, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms,
  type FpmScratch,
} from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, '/usr/sbin/runuser', '/usr/bin/mount'));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

/** Generous: this machine runs at load 20 while four engineers test at once. */
const WAIT_MS = 30_000;

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

function workersOf(masterPid: number): number[] {
  return listFpmProcesses(scratch.dir)
    .filter((p) => p.title.startsWith('php-fpm: pool'))
    .filter((p) => {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]) === masterPid;
    })
    .map((p) => p.pid)
    .sort();
}

/** Runs php-fpm by hand, as an admin or a per-slot init script would; returns the master's pid. */
function startByHand(config: string, pidfile: string, user?: string): number {
  const command = [PHP_FPM, '--fpm-config', config, '--pid', pidfile, '--daemonize'];
  const run = user === undefined ? spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 60_000 })
    : spawnSync('runuser', ['-u', user, '--', ...command], { encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr + run.stdout).toBe(0);
  return Number(readFileSync(pidfile, 'utf8'));
}

const recordFile = (name: string) => join(scratch.runDir, `${name}.record.json`);
const readRecord = (name: string) => JSON.parse(readFileSync(recordFile(name), 'utf8')) as Record<string, unknown>;

test('case 1: a master started by hand with the same config survives start, which names it and signals nothing', async () => {
  declareInstances(scratch, ['a']);
  const hand = startByHand(join(scratch.dir, 'a', 'php-fpm.conf'), join(scratch.dir, 'hand.pid'));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  expect(started.code).toBe(1);
  // Worded as the tryout's finding 8a asks: honest about what php-fpm-multi can tell, with a fix that works.
  expect(started.stderr).toContain(
    `a: not started: a php-fpm master of ${scratch.dir}/a/php-fpm.conf runs (pid ${hand}) without a record of ${scratch.decl}, ` +
      `so php-fpm-multi cannot tell it started it and leaves it alone: stop it the way it was started (kill -QUIT ${hand} for one started by hand)`,
  );
  expect(sent).toEqual([]);
  expect(isAlive(hand)).toBe(true);
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
  // stop does not reach it either: it was never ours.
  expect((await runCli(['--conf', scratch.decl, 'stop'], {}, system)).code).toBe(0);
  expect(sent).toEqual([]);
  expect(isAlive(hand)).toBe(true);
});

test('case 1: a second declaration file declaring the same config does not stop the first one’s instance', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('start')).code).toBe(0);
  const first = masterPid(scratch, 'a');
  const web = join(scratch.dir, 'php-fpm.web');
  writeFileSync(web, `FPM_slot_a="slot=8.2 config=${scratch.dir}/a/php-fpm.conf"\nFPM_run_dir=${scratch.dir}/run-web\n`);
  const { system, sent } = recordSignals();
  const second = await runCli(['--conf', web, 'start'], {}, system);
  expect(second.code).toBe(1);
  expect(second.stderr).toContain(`runs (pid ${first}) without a record of ${web}, so php-fpm-multi cannot tell it started it and leaves it alone`);
  expect(sent).toEqual([]);
  expect(isAlive(first)).toBe(true);
  const status = await cli('status');
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^a +8\.2 +running/m);
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
});

test('case 5: with binary= edited, reload refuses before signalling, status says running, stop stops what the record names', async () => {
  const config = scratch.writeConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'a');
  // Issue 13: a master launched through the controller's symlink switches live
  // (test/integration/lossless.test.ts); one launched directly, as by an older controller
  // (a record without launchPath), keeps this refusal.
  const recordFile = join(scratch.runDir, 'a.record.json');
  const { launchPath: _path, launched: _launched, ...older } = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(recordFile, `${JSON.stringify(older)}\n`);
  const copy = join(scratch.dir, 'php-fpm-new');
  copyFileSync(PHP_FPM, copy);
  chmodSync(copy, 0o755);
  scratch.declare(`FPM_slot_a="binary=${copy} config=${config}"`);
  const { system, sent } = recordSignals();
  const reloaded = await runCli(['--conf', scratch.decl, 'reload'], {}, system);
  expect(reloaded.code).toBe(1);
  expect(reloaded.stderr).toContain(`a: not reloaded, the running master (pid ${master}) keeps serving: the binary changed (${PHP_FPM} → ${copy}), and its master was launched directly`);
  expect(reloaded.stderr).toContain('run php-fpm-multi restart a once (later slot switches are live)');
  expect(sent).toEqual([]);
  const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^a +- +running +${master} `, 'm'));
  const stopped = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: stopped (pid ${master})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('case 5: a master reloaded outside the controller (new pid), then binary= edited: status running, stop stops it', async () => {
  const config = scratch.writeConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const old = masterPid(scratch, 'a');
  process.kill(old, 'SIGUSR2'); // as emergency_restart_threshold or an admin's kill -USR2 would
  const successor = await until('the re-executed master', async () => {
    const pid = masterPid(scratch, 'a');
    return pid !== old && isAlive(pid) && !isAlive(old) ? pid : null;
  }, WAIT_MS);
  const copy = join(scratch.dir, 'php-fpm-new');
  copyFileSync(PHP_FPM, copy);
  chmodSync(copy, 0o755);
  scratch.declare(`FPM_slot_a="binary=${copy} config=${config}"`);
  const status = await cli('status');
  expect(status.code, status.stdout).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^a +- +running +${successor} `, 'm'));
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: stopped (pid ${successor})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('case 8: a record naming another instance’s master (a recycled pid): start leaves that master’s workers alone', async () => {
  declareInstances(scratch, ['a', 'b']);
  expect((await cli('start')).code).toBe(0);
  const recordA = readRecord('a');
  expect((await cli('stop', 'a')).code).toBe(0);
  const b = masterPid(scratch, 'b');
  const bWorkers = workersOf(b);
  expect(bWorkers).toHaveLength(2);
  // a "crashed", and its pid was then handed to b's master.
  writeFileSync(recordFile('a'), JSON.stringify({ ...recordA, pid: b }));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start', 'a'], {}, system);
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).not.toContain('orphaned worker');
  expect(sent.filter(([pid]) => pid === b || bWorkers.includes(pid))).toEqual([]);
  expect(workersOf(b)).toEqual(bWorkers);
  expect(requestPhp(scratch, 'b')).toBe('hello from b');
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
});

test('cases 9a and 10a: record lost, pidfile kept: start adopts the master (record written), stop then reaches it from the record', async () => {
  declareInstances(scratch, ['a', 'b']);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'b');
  unlinkSync(recordFile('b'));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).toContain(`b: already running (pid ${master}); ${scratch.runDir}/b.pid names it, its record was written`);
  expect(sent).toEqual([]);
  expect(readRecord('b')).toMatchObject({ pid: master, uid: 0 });
  // Removed from the file, it is still known (orphan) and stopped by a plain stop.
  declareInstances(scratch, ['a']);
  expect((await cli('status')).stdout).toMatch(new RegExp(`^b +- +orphan +${master}`, 'm'));
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`b: stopped (pid ${master})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('case 9a: pidfile and record both removed while the master runs: start neither kills it nor starts a second one', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'a');
  unlinkSync(recordFile('a'));
  unlinkSync(join(scratch.runDir, 'a.pid'));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`runs (pid ${master}) without a record of ${scratch.decl}`);
  expect(sent).toEqual([]);
  expect(isAlive(master)).toBe(true);
  expect(listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'))).toHaveLength(1);
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
});

test('case 9b: the master of a launch whose controller was killed before the pidfile appeared is adopted, not stopped', async () => {
  declareInstances(scratch, ['a']);
  mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
  // What a controller leaves when SIGKILLed inside the launch: its launch intent, a master that
  // came up after it, and (php-fpm still initializing) no pidfile yet.
  const uptimeTicks = Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);
  const pidfile = join(scratch.runDir, 'a.pid');
  writeFileSync(join(scratch.runDir, 'a.launch.json'), JSON.stringify({
    name: 'a', binary: PHP_FPM, config: join(scratch.dir, 'a', 'php-fpm.conf'), pidfile, uid: 0, launchTicks: uptimeTicks, deadlineTicks: uptimeTicks + 3100,
  }));
  const master = startByHand(join(scratch.dir, 'a', 'php-fpm.conf'), pidfile);
  unlinkSync(pidfile);
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).toContain(`a: already running (pid ${master}); an interrupted start had launched it, its record was written`);
  expect(sent).toEqual([]);
  expect(isAlive(master)).toBe(true);
  expect(readRecord('a')).toMatchObject({ pid: master });
  expect(existsSync(join(scratch.runDir, 'a.launch.json'))).toBe(false);
  expect((await cli('stop')).code).toBe(0);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('case 9c: a `pid =` line added to a running instance’s config: restart refuses before stopping it', async () => {
  declareInstances(scratch, ['a']);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'a');
  const config = join(scratch.dir, 'a', 'php-fpm.conf');
  writeFileSync(config, readFileSync(config, 'utf8').replace('[global]', `[global]\npid = ${scratch.dir}/elsewhere.pid`));
  const { system, sent } = recordSignals();
  const restarted = await runCli(['--conf', scratch.decl, 'restart'], {}, system);
  expect(restarted.code).toBe(1);
  expect(restarted.stderr).toContain(`a: not restarted, left as it was: ${config} sets "pid = ${scratch.dir}/elsewhere.pid"`);
  expect(sent).toEqual([]);
  expect(masterPid(scratch, 'a')).toBe(master);
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
});

test('case 9d: a reload whose new master dies is reported once the old master is gone, not after start_timeout', async () => {
  // start_timeout far above the test's own timeout: only an early report lets the test pass.
  declareInstances(scratch, ['a'], 'start_timeout=600');
  expect((await cli('start')).code).toBe(0);
  const old = masterPid(scratch, 'a');
  // A new pool on a TCP port another program holds: php-fpm -t passes (it binds nothing), the
  // re-executed master fails to bind and exits. (The controller finds the holder before the
  // signal since tryout finding 5; it is hidden from it here, as a port taken between that check
  // and the re-execution would be.)
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as AddressInfo).port;
  try {
    appendFileSync(join(scratch.dir, 'a', 'php-fpm.conf'), [
      '[two]', 'user = www-data', 'group = www-data', `listen = 127.0.0.1:${port}`, 'pm = static', 'pm.max_children = 1', '',
    ].join('\n'));
    const reloaded = await runCli(['--conf', scratch.decl, 'reload'], {}, hideListeningSockets(createRealSystem()));
    expect(reloaded.code).toBe(1);
    expect(reloaded.stderr).toContain(`a: reload failed: its master (pid ${old}) died during the reload: the instance is down`);
    expect(reloaded.stderr).toContain(`unable to bind listening socket for address '127.0.0.1:${port}'`);
  } finally {
    holder.close();
  }
}, 120_000);

test('case 10b: a controller SIGKILLed mid-stop: the instance is stopped, not crashed, and stop cleans up', async () => {
  declareInstances(scratch, ['a'], 'stop_timeout=60');
  const config = join(scratch.dir, 'a', 'php-fpm.conf');
  // A graceful stop waits for the request in flight (process_control_timeout), long enough to kill the controller.
  writeFileSync(config, readFileSync(config, 'utf8').replace('[global]', '[global]\nprocess_control_timeout = 60s'));
  const marks = join(scratch.dir, 'marks');
  mkdirSync(marks);
  chmodSync(marks, 0o777); // the worker (www-data) says when the request is in flight
  // The request runs until the test releases it (at most 60 s): the stop stays in progress meanwhile.
  writeFileSync(join(scratch.dir, 'slow.php'),
    `<?php file_put_contents('${marks}/in-flight', '1'); $t = time(); while (!file_exists('${marks}/release') && time() - $t < 60) { usleep(10000); clearstatcache(); } echo "done\\n";`);
  expect((await cli('start')).code).toBe(0);
  const master = masterPid(scratch, 'a');
  const request = spawn(CGI_FCGI, ['-bind', '-connect', scratch.socket('a')], {
    env: { SCRIPT_FILENAME: join(scratch.dir, 'slow.php'), REQUEST_METHOD: 'GET', SCRIPT_NAME: '/slow.php' }, stdio: 'ignore',
  });
  const requestDone = new Promise((resolve) => request.on('exit', resolve));
  await until('the slow request to be in flight', async () => existsSync(join(marks, 'in-flight')), WAIT_MS);
  const controller = spawn(process.execPath, [CLI, '--conf', scratch.decl, 'stop'], { stdio: 'ignore' });
  const controllerDone = new Promise((resolve) => controller.on('exit', resolve));
  await until('php-fpm to receive the stop', async () => readFileSync(join(scratch.dir, 'a', 'error.log'), 'utf8').includes('Finishing'), WAIT_MS);
  controller.kill('SIGKILL');
  await controllerDone;
  expect(existsSync(recordFile('a'))).toBe(true); // killed mid-stop: the master was still finishing its request
  writeFileSync(join(marks, 'release'), '');
  await requestDone;
  await until('the master to finish its graceful stop', async () => !isAlive(master), WAIT_MS);
  // A pidfile left naming the dead master (as after a SIGKILL escalation) must not make it a crash either.
  writeFileSync(join(scratch.runDir, 'a.pid'), String(master));
  const status = await cli('status');
  expect(status.code, status.stdout).toBe(3);
  expect(status.stdout).toMatch(/^a +8\.2 +stopped/m);
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: not running (a stop of its master (pid ${master}) was interrupted`);
  expect(existsSync(join(scratch.runDir, 'a.pid'))).toBe(false);
  expect(existsSync(recordFile('a'))).toBe(false);
  expect((await cli('status')).code).toBe(3);
}, 120_000);

test('issue 10: a php-fpm of another user with the same binary and config is never signalled nor adopted', async () => {
  declareInstances(scratch, ['a']);
  // nobody runs php-fpm on the same config (its log and socket in a directory nobody owns).
  const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout);
  chownSync(join(scratch.dir, 'a'), uid, uid);
  const foreign = startByHand(join(scratch.dir, 'a', 'php-fpm.conf'), join(scratch.dir, 'a', 'nobody.pid'), 'nobody');
  expect(readFileSync(`/proc/${foreign}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
  const { system, sent } = recordSignals();
  const started = await runCli(['--conf', scratch.decl, 'start'], {}, system);
  // Its socket is taken by nobody's master: found before the launch (tryout finding 5), and left alone.
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`a: not started: pool 'a'`);
  expect(started.stderr).toContain(`already has a listening socket, held by pid ${foreign} (php-fpm: master process (`);
  expect(sent.filter(([pid]) => pid === foreign)).toEqual([]);
  expect(isAlive(foreign)).toBe(true);
  // Our pidfile naming it does not make it ours either.
  mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
  writeFileSync(join(scratch.runDir, 'a.pid'), String(foreign));
  const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
  expect(status.stdout).toMatch(/^a +8\.2 +stale/m);
  expect(status.stdout).toContain(`runs as uid ${uid}`);
  expect((await runCli(['--conf', scratch.decl, 'start'], {}, system)).code).toBe(1);
  expect((await runCli(['--conf', scratch.decl, 'stop'], {}, system)).code).toBe(0);
  expect(sent.filter(([pid]) => pid === foreign)).toEqual([]);
  expect(isAlive(foreign)).toBe(true);
  expect(existsSync(recordFile('a'))).toBe(false);
});

test('issue 10: an empty pidfile with no master running does not block start', async () => {
  declareInstances(scratch, ['a']);
  mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
  writeFileSync(join(scratch.runDir, 'a.pid'), '');
  const started = await cli('start');
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).toMatch(new RegExp(`a: started \\(pid \\d+\\); removed the empty pidfile ${scratch.runDir}/a.pid`));
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
});

test('issue 10: a full run directory (tmpfs, ENOSPC): a named failure, no master left without a record, no empty pidfile blocking starts', async () => {
  declareInstances(scratch, ['a', 'b']);
  mkdirSync(scratch.runDir, { mode: 0o755 });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', scratch.runDir], { encoding: 'utf8' });
  expect(mount.status, mount.stderr).toBe(0);
  try {
    const filler = join(scratch.runDir, 'filler');
    const real = createRealSystem();
    // The run directory fills up while php-fpm starts (as when other files grow meanwhile).
    const system: System = {
      ...real,
      run: async (program, args, options) => {
        const result = await real.run(program, args, options);
        if (args.includes('--daemonize')) fill(filler);
        return result;
      },
    };
    // One instance at a time: a second launch filling the disk could otherwise meet the first's
    // php-fpm writing its pidfile (the other failure, tested below).
    const started = await runCli(['--conf', scratch.decl, 'start', 'a'], {}, system);
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(new RegExp(
      `a: start failed: cannot write its record ${scratch.runDir}/a.record.json: ENOSPC; its master \\(pid \\d+\\) was stopped, ` +
        `for a master without a record would be invisible to stop. Free space in ${scratch.runDir}`,
    ));
    expect(started.stderr).not.toContain('internal error');
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect((await cli('status')).code).toBe(3);

    // Full before php-fpm writes its pidfile: php-fpm fails; freed, the next start is not blocked.
    rmSync(filler);
    const early: System = {
      ...real,
      run: async (program, args, options) => {
        if (args.includes('--daemonize')) fill(filler);
        return real.run(program, args, options);
      },
    };
    const failed = await runCli(['--conf', scratch.decl, 'start', 'b'], {}, early);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/b: start failed: php-fpm exited with status \d+.*\n.*Unable to write to the PID file.*No space left on device/);
    expect(failed.stderr).not.toContain('internal error');
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    // php-fpm created its pidfile and could not write the pid: the failed start removes what its launch left.
    expect(failed.stderr).toContain(`removed the empty pidfile ${scratch.runDir}/b.pid its php-fpm left`);
    expect(existsSync(join(scratch.runDir, 'b.pid'))).toBe(false);
    rmSync(filler);
    const again = await cli('start');
    expect(again.code, again.stderr).toBe(0);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect((await cli('stop')).code).toBe(0);
  } finally {
    scratch.remove = ((remove) => () => {
      spawnSync('umount', ['-l', scratch.runDir]);
      remove();
    })(scratch.remove);
  }
}, 120_000);

test('issue 10: an unprivileged start meeting a root-owned stale pidfile is a named failure, not an internal error', () => {
  const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout);
  const runtime = join(scratch.dir, 'xdg');
  mkdirSync(runtime, { mode: 0o700 });
  chownSync(runtime, uid, uid);
  const config = scratch.writeConfig('a');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^(user|group) = .*$/gm, ''));
  chownSync(join(scratch.dir, 'a'), uid, uid);
  // root's directory and pidfile (trusted: root-owned), naming a process that is not php-fpm.
  const rootDir = join(scratch.dir, 'root-run');
  mkdirSync(rootDir, { mode: 0o755 });
  const sleeper = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  try {
    writeFileSync(join(rootDir, 'a.pid'), String(sleeper.pid));
    writeFileSync(scratch.decl, `FPM_slot_a="slot=8.2 config=${config} pidfile=${rootDir}/a.pid"\n`);
    // The user's own declaration (a root-owned one is refused as a whole: "needs root").
    chownSync(scratch.decl, uid, uid);
    const started = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, '--conf', scratch.decl, 'start'], {
      encoding: 'utf8', env: { PATH: process.env['PATH'], XDG_RUNTIME_DIR: runtime }, timeout: 60_000,
    });
    expect(started.status).toBe(1);
    expect(started.stderr).not.toContain('internal error');
    // An ordinary user cannot read root's /proc/PID/exe: the state is unknown, said so, and
    // nothing is removed or signalled.
    expect(started.stderr).toContain(`a: not started: ${rootDir}/a.pid names pid ${sleeper.pid}, which runs as another user: the state cannot be determined without root (run as root)`);
    expect(readFileSync(join(rootDir, 'a.pid'), 'utf8')).toBe(String(sleeper.pid));
    expect(isAlive(sleeper.pid!)).toBe(true);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('case 1, for check: describeUnownedMaster names a master of the config that the declaration did not start, and only that', async () => {
  const { describeUnownedMaster } = await import('../../src/process/occupants.js');
  const { ProcessTable } = await import('../../src/process/terminate.js');
  const config = scratch.writeConfig('a');
  const instance = { name: 'a', binary: PHP_FPM, config, pidfile: join(scratch.runDir, 'a.pid') } as UsableInstance;
  const ctx = () => {
    const system = createRealSystem();
    return { system, runDir: scratch.runDir, path: process.env['PATH'], conf: scratch.decl, processes: new ProcessTable(system) };
  };
  const target = { kind: 'declared' as const, name: 'a', instance, record: null, intent: null, recordProblem: null, pidfileProves: true, errorLog: null, pools: [] };
  expect(await describeUnownedMaster(ctx(), target)).toBeNull();
  const hand = startByHand(config, join(scratch.dir, 'hand.pid'));
  expect(await describeUnownedMaster(ctx(), target)).toBe(
    `a php-fpm master of ${config} runs (pid ${hand}) without a record of ${scratch.decl}, so php-fpm-multi cannot tell it started it and leaves it alone: ` +
      `stop it the way it was started (kill -QUIT ${hand} for one started by hand) or remove the duplicate declaration, then run start`,
  );
  // Named by the instance's own pidfile, it is this instance's (start adopts it): nothing to report.
  mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
  writeFileSync(join(scratch.runDir, 'a.pid'), String(hand));
  expect(await describeUnownedMaster(ctx(), target)).toBeNull();
});
