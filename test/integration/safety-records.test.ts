// Issue 9 (cases 3, 4, 6, 10) and issue 10 (run-directory trust first, failing resources,
// output that cannot be written), against real php8.2-fpm: stop and status work whatever state
// the declaration file and the run directory are in, and read state only after the lock.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, openSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import {
  CGI_FCGI, CLI, declareInstances, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requirePrograms, runCliProcess, type FpmScratch,
} from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

const NOBODY = 65534;
const FLOCK = '/usr/bin/flock';
/** A CLI process that hangs (a FIFO read) is killed after this long and fails the test. */
const HANG_LIMIT_MS = 60_000;

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, FLOCK, '/usr/sbin/runuser', '/usr/bin/mkfifo'));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);
const masters = () => listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'));
/** A worker just forked still bears its master's title for a moment: count once they settled. */
const settledMasters = (count: number) => until(`${count} masters`, async () => masters().length === count && masters(), 30_000);

/** The CLI as its own process, with a hard limit: a hang is a failure (status null), not a stuck suite. */
function runLimited(args: string[], options: { uid?: number; env?: Record<string, string>; stdio?: 'full' } = {}) {
  const argv = options.uid === undefined ? [process.execPath, CLI, ...args] : ['/usr/sbin/runuser', '-u', 'nobody', '--', process.execPath, CLI, ...args];
  const full = options.stdio === 'full' ? openSync('/dev/full', 'w') : null;
  try {
    const result = spawnSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8', timeout: HANG_LIMIT_MS, env: { PATH: process.env['PATH'], ...options.env },
      ...(full === null ? {} : { stdio: ['ignore', full, full] }),
    });
    return { code: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  } finally {
    if (full !== null) closeSync(full);
  }
}

describe('issue 9 case 3: an unusable declaration file never blocks stop or status', () => {
  const breakages: Array<[string, (decl: string) => void, boolean]> = [
    ['a stray FPM_ETC=/x', (decl) => writeFileSync(decl, `${readFileSync(decl, 'utf8')}FPM_ETC=/x\n`), true],
    ['the typo FPM_default=', (decl) => writeFileSync(decl, `${readFileSync(decl, 'utf8')}FPM_default=\n`), true],
    ['a refused statement (DeclarationError)', (decl) => writeFileSync(decl, `${readFileSync(decl, 'utf8')}echo $(id)\n`), false],
    ['a file that became unreadable (a directory now)', (decl) => (rmSync(decl), mkdirSync(decl)), false],
    ['a missing file', (decl) => rmSync(decl), false],
  ];

  test.each(breakages)('%s: start refuses (exit 6); status reports and stop stops every recorded instance', async (_what, breakFile, runDirReadable) => {
    // Where the reader cannot get FPM_run_dir, the default run directory for the file's name is
    // used: a name of its own, so that nothing else on this machine shares it.
    const name = `php-fpm.records-${basename(scratch.dir)}`;
    const decl = join(scratch.dir, name);
    const runDir = runDirReadable ? scratch.runDir : `/run/php-fpm-multi/${name}`;
    const a = scratch.writeConfig('a');
    const b = scratch.writeConfig('b');
    writeFileSync(decl, `FPM_slot_a="slot=8.2 config=${a}"\nFPM_slot_b="slot=8.2 config=${b}"\n${runDirReadable ? `FPM_run_dir=${runDir}\n` : ''}`);
    const run = (...args: string[]) => runCli(['--conf', decl, ...args]);
    try {
      const started = await run('start');
      expect(started.code, started.stderr).toBe(0);
      expect(await settledMasters(2)).toHaveLength(2);
      breakFile(decl);

      for (const command of ['start', 'restart', 'reload', 'reopen', 'configtest', 'health']) expect((await run(command)).code, command).toBe(6);
      const before = await run('--json', 'status');
      expect(before.code, before.stderr).toBe(0);
      expect(before.stderr).toContain(`php-fpm-multi: warning: ${decl} is unusable (`);
      expect(before.stderr).toContain(`; acting on the records in ${runDir}`);
      expect(JSON.parse(before.stdout).instances.map((i: { name: string; state: string }) => [i.name, i.state])).toEqual([['a', 'running'], ['b', 'running']]);

      const stopped = await run('stop');
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stderr).toContain(`acting on the records in ${runDir}`);
      expect(stopped.stdout).toMatch(/a: stopped \(pid \d+\)/);
      expect(stopped.stdout).toMatch(/b: stopped \(pid \d+\)/);
      expect(listFpmProcesses(scratch.dir)).toEqual([]);
      expect(readdirSync(runDir).filter((f) => f.endsWith('.record.json'))).toEqual([]);
      expect((await run('status')).code).toBe(3);
    } finally {
      if (!runDirReadable) rmSync(runDir, { recursive: true, force: true });
      // With FPM_run_dir, start remembered it in the file's default run directory (its pointer is gone with the file's).
      else rmSync(`/run/php-fpm-multi/${name}`, { recursive: true, force: true });
    }
  });

  test('the runscript\'s stop path is only `stop`: no check runs before it (a restart checks first)', () => {
    const runscript = readFileSync(join(import.meta.dirname, '..', '..', 'init.d', 'php-fpm.in'), 'utf8');
    const stop = runscript.slice(runscript.indexOf('\nstop() {'), runscript.indexOf('\n}\n', runscript.indexOf('\nstop() {')));
    expect(stop).toContain('\tphp_fpm_multi_run stop\n');
    expect(stop).not.toContain('check');
    expect(runscript).toMatch(/stop_pre\(\) \{\n\tif \[ "\$\{RC_CMD\}" = restart \]; then\n\t\tcheckconfig/);
  });
});

describe('issue 9 case 6: recorded names are valid names for stop and status', () => {
  test('stop blog stops an instance removed from the file; status blog shows it; an unknown name lists declared and recorded names', async () => {
    declareInstances(scratch, ['a', 'blog']);
    expect((await cli('start')).code).toBe(0);
    declareInstances(scratch, ['a']); // blog removed from the file while it runs
    const shown = await cli('--json', 'status', 'blog');
    expect(shown.code, shown.stderr).toBe(1); // tryout 2 finding 10c: a running orphan is running, not as declared (was 3)
    expect(JSON.parse(shown.stdout).instances.map((i: { name: string; state: string }) => [i.name, i.state])).toEqual([['blog', 'orphan']]);

    const unknown = await cli('stop', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('php-fpm-multi: no instance "nope" in the declaration file (known: a; recorded (no longer declared): blog)\n');
    expect((await cli('start', 'blog')).code).toBe(2); // start acts on declared instances only

    const stopped = await cli('stop', 'blog');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/blog: stopped \(pid \d+\)/);
    expect((await settledMasters(1)).map((m) => m.title)).toEqual([expect.stringContaining(join(scratch.dir, 'a'))]);
    expect(existsSync(join(scratch.runDir, 'blog.record.json'))).toBe(false);
  });
});

describe('issue 9 case 10: records are read after the lock is taken', () => {
  test('a stop waiting for the lock sees the record written while it waited, and stops that instance', async () => {
    declareInstances(scratch, ['a']);
    const i2 = scratch.writeConfig('i2');
    writeFileSync(scratch.decl, `${readFileSync(scratch.decl, 'utf8')}FPM_slot_i2="slot=8.2 config=${i2} enabled=no"\n`);
    expect((await cli('start', 'i2')).code).toBe(0); // a disabled instance, started by name
    const record = join(scratch.runDir, 'i2.record.json');
    const aside = join(scratch.dir, 'i2.record.aside');
    renameSync(record, aside); // as if the start holding the lock had not written it yet

    // Another command holds the lock (flock(1) on the controller's lock file, as the controller does).
    // --close: only flock(1) itself holds it, so that killing it releases the lock.
    const holder = spawn(FLOCK, ['--exclusive', '--close', join(scratch.runDir, 'lock'), 'sleep', '600'], { stdio: 'ignore', detached: true });
    const release = () => {
      try {
        process.kill(-holder.pid!, 'SIGKILL'); // flock(1) and its sleep
      } catch {
        // already gone
      }
    };
    try {
      await until('the holder takes the lock', async () => lockHolders(scratch.runDir).length > 0, 30_000);
      const stop = spawn(process.execPath, [CLI, '--conf', scratch.decl, 'stop'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      stop.stdout.on('data', (chunk) => (stdout += chunk));
      stop.stderr.on('data', (chunk) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => stop.on('exit', (code) => resolve(code)));
      // The stop is waiting for the lock once its flock(1) child runs.
      await until('the stop waits for the lock', async () => lockWaiters(stop.pid!).length > 0, 60_000);
      renameSync(aside, record); // the holder wrote its record
      release(); // and released the lock
      expect(await exited, stderr).toBe(0);
      expect(stdout).toMatch(/i2: stopped \(pid \d+\)/);
      expect(masters()).toEqual([]);
    } finally {
      release();
    }
  }, 180_000);
});

/** Processes `flock … <runDir>/lock` of the test (the holder). */
function lockHolders(runDir: string): number[] {
  return listCmdlines().filter(([, cmdline]) => cmdline.includes(join(runDir, 'lock')) && cmdline.includes('sleep')).map(([pid]) => pid);
}

/** The controller's own flock(1) child waiting on fd 3. */
function lockWaiters(parent: number): number[] {
  return listCmdlines().filter(([pid, cmdline]) => cmdline.startsWith(FLOCK) && readPpid(pid) === parent).map(([pid]) => pid);
}

function listCmdlines(): Array<[number, string]> {
  const found: Array<[number, string]> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.push([Number(entry), readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()]);
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function readPpid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

describe('issue 9 case 4: an ordinary user reads the truth or says it needs root, never "stopped"', () => {
  test('as nobody: status, status --pools and health of instances root runs; stop and start need root (exit 4)', async () => {
    const name = `php-fpm.records-${basename(scratch.dir)}`;
    const decl = join(scratch.dir, name);
    const runDir = `/run/php-fpm-multi/${name}`;
    const xdg = join(scratch.dir, 'xdg');
    mkdirSync(xdg, { mode: 0o700 });
    chownSync(xdg, NOBODY, NOBODY);
    const a = scratch.writeConfig('a', 'listen.mode = 0666\npm.status_path = /status\nping.path = /ping');
    const b = scratch.writeConfig('b', 'ping.path = /ping'); // its socket: 0660 www-data, closed to nobody
    writeFileSync(decl, `FPM_slot_a="slot=8.2 config=${a}"\nFPM_slot_b="slot=8.2 config=${b}"\n`); // root's file, no FPM_run_dir: root's default run directory
    const asNobody = (...args: string[]) => runLimited(['--conf', decl, ...args], { uid: NOBODY, env: { XDG_RUNTIME_DIR: xdg } });
    try {
      const started = await runCli(['--conf', decl, 'start']);
      expect(started.code, started.stderr).toBe(0);
      const pid = Number(readFileSync(join(runDir, 'a.pid'), 'utf8'));
      const pidB = Number(readFileSync(join(runDir, 'b.pid'), 'utf8'));

      const status = asNobody('--json', 'status');
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout).instances).toEqual([
        expect.objectContaining({ name: 'a', state: 'running', pid }), expect.objectContaining({ name: 'b', state: 'running', pid: pidB }),
      ]);
      const pools = asNobody('--json', 'status', '--pools', 'a');
      expect(pools.code, pools.stderr).toBe(0);
      expect(JSON.parse(pools.stdout).pools).toEqual([expect.objectContaining({ instance: 'a', instance_state: 'running', status_page: 'answered' })]);
      const health = asNobody('health', 'a');
      expect(health.code, health.stdout + health.stderr).toBe(0);
      // b's socket is closed to this user: its health cannot be determined, said plainly (exit 4).
      const denied = asNobody('health');
      expect(denied.code, denied.stdout + denied.stderr).toBe(4);
      expect(denied.stdout).toContain('b/b: ping /ping failed: FastCGI unix:');
      expect(denied.stdout).toContain('permission denied (EACCES)');
      expect(denied.stdout).toContain('cannot be determined without root');

      for (const command of ['stop', 'start', 'restart', 'reload']) {
        const refused = asNobody(command);
        expect(refused.code, `${command}: ${refused.stderr}`).toBe(4);
        expect(refused.stderr).toContain('needs root: run it as root');
      }
      expect((await settledMasters(2)).map((m) => m.pid).sort()).toEqual([pid, pidB].sort()); // untouched

      // Records and pidfiles out of reach: the state is unknown, said plainly (exit 4), never "stopped".
      chmodSync(runDir, 0o700);
      for (const args of [['status'], ['status', '--pools'], ['health']]) {
        const blind = asNobody(...args);
        expect(blind.code, `${args.join(' ')}: ${blind.stdout}${blind.stderr}`).toBe(4);
        expect(blind.stdout + blind.stderr).toContain('cannot be determined without root');
        expect(blind.stdout + blind.stderr).not.toMatch(/stopped|not running/);
      }
      chmodSync(runDir, 0o755);
      // The record gone (only the pidfile left), root's master cannot be verified without root.
      renameSync(join(runDir, 'a.record.json'), join(scratch.dir, 'a.record.aside'));
      const unverified = asNobody('status');
      expect(unverified.code, unverified.stderr).toBe(4);
      expect(unverified.stdout).toMatch(/^a +8\.2 +unknown/m);
      expect(unverified.stdout).toMatch(/^b +8\.2 +running/m);
      expect(unverified.stdout).toContain('cannot be determined without root (run as root)');
      renameSync(join(scratch.dir, 'a.record.aside'), join(runDir, 'a.record.json'));
      expect((await runCli(['--conf', decl, 'stop'])).code).toBe(0);
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});

describe('issue 10: the run directory is trusted before anything in it is read', () => {
  test('a run directory owned by another user, with a FIFO, /dev/zero and a forged record in it: every command refuses at once (exit 6)', () => {
    declareInstances(scratch, ['a', 'b', 'c']);
    mkdirSync(scratch.runDir, { mode: 0o755 });
    chownSync(scratch.runDir, NOBODY, NOBODY);
    spawnSync('/usr/bin/mkfifo', [join(scratch.runDir, 'a.record.json')]);
    symlinkSync('/dev/zero', join(scratch.runDir, 'b.record.json'));
    writeFileSync(join(scratch.runDir, 'c.record.json'), JSON.stringify({ name: 'c', binary: '/usr/bin/cat', config: '/x', pidfile: '/x', pid: process.pid, startTimeTicks: 1 }));
    for (const command of ['status', 'stop', 'start', 'health', 'reload', 'restart']) {
      const result = runLimited(['--conf', scratch.decl, command]);
      expect(result.code, `${command}: ${result.stderr}`).toBe(6);
      expect(result.stderr).toContain(`run directory ${scratch.runDir}: ${scratch.runDir} is owned by uid ${NOBODY}, not root`);
      expect(result.stderr).toContain('Nothing in it was read.');
      expect(result.stdout).toBe('');
    }
    const pools = runLimited(['--conf', scratch.decl, 'status', '--pools']);
    expect(pools.code, pools.stderr).toBe(6);
  });

  test('FPM_run_dir naming a regular file: a named error (exit 6), never "internal error"', () => {
    declareInstances(scratch, ['a']);
    writeFileSync(scratch.runDir, 'not a directory\n');
    for (const runDir of [scratch.runDir, join(scratch.runDir, 'below')]) {
      writeFileSync(scratch.decl, readFileSync(scratch.decl, 'utf8').replace(/^FPM_run_dir=.*$/m, `FPM_run_dir=${runDir}`));
      for (const command of ['status', 'stop', 'start', 'health']) {
        const result = runLimited(['--conf', scratch.decl, command]);
        expect(result.code, `${command} ${runDir}: ${result.stderr}`).toBe(6);
        expect(result.stderr).toContain(scratch.runDir);
        expect(result.stderr).toMatch(/is not a directory|ENOTDIR/);
        expect(result.stderr).not.toContain('internal error');
      }
    }
  });

  test('an unprivileged start meeting a root pidfile: a named failure of that instance (EACCES), never "internal error"', () => {
    const xdg = join(scratch.dir, 'xdg');
    const rootOnly = join(scratch.dir, 'root-only');
    mkdirSync(xdg, { mode: 0o700 });
    chownSync(xdg, NOBODY, NOBODY);
    mkdirSync(rootOnly, { mode: 0o700 });
    writeFileSync(join(rootOnly, 'a.pid'), '1234');
    const config = scratch.writeConfig('a');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^(user|group) = .*$/gm, ''));
    chownSync(join(scratch.dir, 'a'), NOBODY, NOBODY);
    writeFileSync(scratch.decl, `FPM_slot_a="slot=8.2 config=${config} pidfile=${join(rootOnly, 'a.pid')}"\n`);
    chownSync(scratch.decl, NOBODY, NOBODY);
    const started = runLimited(['--conf', scratch.decl, 'start'], { uid: NOBODY, env: { XDG_RUNTIME_DIR: xdg } });
    expect(started.code, started.stderr).toBe(1);
    expect(started.stderr).toContain(`a: not started: pidfile ${join(rootOnly, 'a.pid')}: permission denied (EACCES): the state cannot be determined without root (run as root)`);
    expect(started.stderr).not.toContain('internal error');
    expect(masters()).toEqual([]);
  });
});

describe('issue 10: failing resources', () => {
  let mountPoint: string | null = null;
  afterEach(() => {
    if (mountPoint === null) return;
    killAllUnder(scratch);
    spawnSync('umount', ['-l', mountPoint]);
    mountPoint = null;
  });

  function mountRunDir(): void {
    mkdirSync(scratch.runDir, { mode: 0o755 });
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0755', 'tmpfs', scratch.runDir], { encoding: 'utf8' });
    expect(mounted.status, mounted.stderr).toBe(0);
    mountPoint = scratch.runDir;
  }

  test('a full run directory (ENOSPC): stop stops every recorded instance', async () => {
    mountRunDir();
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    // Fill it to the last block (the lock file is empty: the holder's pid cannot be written).
    spawnSync('sh', ['-c', `dd if=/dev/zero of=${join(scratch.runDir, 'filler')} bs=4k 2>/dev/null; true`]);
    expect(spawnSync('sh', ['-c', `echo x > ${join(scratch.runDir, 'probe')}`]).status).not.toBe(0);
    const reopened = await cli('reopen'); // a command that writes nothing gets past the lock
    expect(reopened.code, reopened.stderr).toBe(0);
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/a: stopped/);
    expect(stopped.stdout).toMatch(/b: stopped/);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect(readdirSync(scratch.runDir).filter((f) => f.endsWith('.record.json'))).toEqual([]);
  });

  test('a read-only run directory (EROFS): stop stops every recorded instance and warns about the files it could not remove', async () => {
    mountRunDir();
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    const remounted = spawnSync('mount', ['-o', 'remount,ro', scratch.runDir], { encoding: 'utf8' });
    expect(remounted.status, remounted.stderr).toBe(0);
    const reopened = await cli('reopen'); // the lock is taken on a read-only descriptor
    expect(reopened.code, reopened.stderr).toBe(0);
    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/a: stopped/);
    expect(stopped.stdout).toMatch(/b: stopped/);
    expect(stopped.stderr).toContain(`warning: could not remove ${join(scratch.runDir, 'a.record.json')} (read-only file system, EROFS)`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });
});

function killAllUnder(s: FpmScratch): void {
  for (const proc of listFpmProcesses(s.dir)) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

describe('issue 10: output is best effort for every write error', () => {
  test('start >/dev/full starts everything and writes every record; stop >/dev/full stops and removes them', async () => {
    declareInstances(scratch, ['a', 'b', 'c', 'd']);
    const started = runLimited(['--conf', scratch.decl, 'start'], { stdio: 'full' });
    expect(started.code).toBe(0);
    expect(await settledMasters(4)).toHaveLength(4);
    expect(readdirSync(scratch.runDir).filter((f) => f.endsWith('.record.json')).sort()).toEqual(['a', 'b', 'c', 'd'].map((n) => `${n}.record.json`));
    for (const name of ['a', 'b', 'c', 'd']) expect(masterPid(scratch, name)).toBeGreaterThan(1);
    const stopped = runLimited(['--conf', scratch.decl, 'stop'], { stdio: 'full' });
    expect(stopped.code).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect(readdirSync(scratch.runDir).filter((f) => f.endsWith('.record.json'))).toEqual([]);
    expect(runCliProcess(['--conf', scratch.decl, 'status']).code).toBe(3);
  });
});

describe('options go with the commands that take them', () => {
  test.each([
    [['--json', 'check'], '--json goes with list, status, not check'],
    [['--json', 'configtest'], '--json goes with list, status, not configtest'],
    [['--json', 'stop'], '--json goes with list, status, not stop'],
    [['--json', 'start'], '--json goes with list, status, not start'],
    [['--pools', 'health'], '--pools goes with status, not health'],
  ])('%j is a usage error naming the option, the command and the commands that take it', async (argv, message) => {
    expect(await runCli(argv)).toEqual({ code: 2, stdout: '', stderr: `php-fpm-multi: ${message}\n` });
  });

  test('--help says which options go with which command, and what exit 4 means', async () => {
    const help = (await runCli(['--help'])).stdout;
    expect(help).toMatch(/^ +--json +list, status: /m);
    expect(help).toMatch(/^ +--partial +start: /m);
    expect(help).toMatch(/^ +--pools +status: /m);
    expect(help).toMatch(/^ +--format FMT +health: /m);
    expect(help).toContain('needs root');
  });
});
