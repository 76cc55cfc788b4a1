import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  CLOCK_TICKS_PER_SECOND,
  listStats,
  masterTitle,
  parseBootTime,
  parseCmdline,
  parseExeLink,
  parseStat,
  processAgeMs,
  ProcFormatError,
  readBootTimeSeconds,
  readProcess,
  resolveExecutablePath,
  startTimeEpochMs,
  verifyIdentity,
  type ExpectedIdentity,
  type ProcessInfo,
} from '../../src/process/proc.js';
import { parsePidfile } from '../../src/process/pidfile.js';
import { signalVerified } from '../../src/process/signal.js';
import { createRealSystem, type System } from '../../src/process/system.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';
import { until } from '../helpers/wait.js';
import { findBySession, findChildren, listProcesses } from '../helpers/processes.js';

const PHP_FPM = '/usr/sbin/php-fpm8.2';
const CONFIG = '/etc/php-fpm-multi/web.conf';

function statLine(pid: number, comm: string, rest = 'S 1 77 77 0 -1 4194368 96 0 0 0 0 0 0 0 20 0 1 0 31458 206438400 1669'): string {
  return `${pid} (${comm}) ${rest}\n`;
}

describe('parseStat', () => {
  test.each([
    ['plain', 'php-fpm8.2'],
    ['with spaces', 'php-fpm: master'],
    ['with a closing parenthesis', 'a) b'],
    ['in parentheses with one inside', '(a) b)'],
    ['looking like more fields', 'x) S 1 2 3'],
    ['empty', ''],
  ])('splits at the last ")" when comm is %s', (_name, comm) => {
    expect(parseStat(statLine(9770, comm))).toEqual({
      pid: 9770,
      comm,
      state: 'S',
      ppid: 1,
      processGroupId: 77,
      sessionId: 77,
      startTimeTicks: 31458,
    });
  });

  test('reads a real php-fpm master line', () => {
    const line =
      '9770 (php-fpm8.2) S 1 9770 9770 0 -1 4194368 96 0 0 0 0 0 0 0 20 0 1 0 31458 206438400 1669 18446744073709551615 94344393170944 94344396405549 140734707337360 0 0 0 0 4096 84487 1 0 0 17 0 0 0 0 0 0 94344397358056 94344397946862 94345124671488 140734707346070 140734707346144 140734707346144 140734707347427 0\n';
    expect(parseStat(line)).toMatchObject({ pid: 9770, comm: 'php-fpm8.2', ppid: 1, sessionId: 9770, processGroupId: 9770, startTimeTicks: 31458 });
  });

  test('reads a dying process, whose process group and session are -1 (seen in a stop)', () => {
    const line = '22187 (php-fpm8.2) X 0 -1 -1 0 -1 4210756 300 0 0 0 0 0 0 0 20 0 1 0 31458 0 0\n';
    expect(parseStat(line)).toMatchObject({ pid: 22187, state: 'X', ppid: 0, processGroupId: -1, sessionId: -1, startTimeTicks: 31458 });
  });

  test('a dying process counts as gone', async () => {
    const system = new FakeSystem();
    system.addFile('/proc/22187/stat', '22187 (php-fpm8.2) X 0 -1 -1 0 -1 4210756 300 0 0 0 0 0 0 0 20 0 1 0 31458 0 0\n');
    expect(await readProcess(system, 22187)).toBeNull();
  });

  test.each([
    ['a negative parent', statLine(5, 'x', 'S -1 77 77 0 -1 4194368 96 0 0 0 0 0 0 0 20 0 1 0 31458')],
    ['a session below -1', statLine(5, 'x', 'S 1 77 -2 0 -1 4194368 96 0 0 0 0 0 0 0 20 0 1 0 31458')],
    ['no parentheses', '123 bash S 1 2 3'],
    ['truncated', '123 (bash) S 1 2'],
    ['not a number', 'abc (bash) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5'],
    ['bad state', statLine(5, 'x', '?? 1 77 77 0 -1 4194368 96 0 0 0 0 0 0 0 20 0 1 0 31458')],
    ['empty', ''],
  ])('refuses %s', (_name, content) => {
    expect(() => parseStat(content)).toThrow(ProcFormatError);
  });
});

describe('parseCmdline and parseExeLink', () => {
  test.each([
    ['php-fpm title with NUL padding', `php-fpm: master process (/tmp/x/fpm.conf)${'\0'.repeat(32)}`, ['php-fpm: master process (/tmp/x/fpm.conf)']],
    ['title longer than the argv it replaced', 'php-fpm: master process (/tmp/x/fpm.conf)\0', ['php-fpm: master process (/tmp/x/fpm.conf)']],
    ['ordinary argv', 'sleep\x005\0', ['sleep', '5']],
    ['empty argument inside', 'a\0\0b\0', ['a', '', 'b']],
    ['kernel thread', '', []],
  ])('%s', (_name, content, expected) => {
    expect(parseCmdline(content)).toEqual(expected);
  });

  test('the kernel\'s " (deleted)" suffix becomes a flag', () => {
    expect(parseExeLink('/usr/sbin/php-fpm8.2 (deleted)')).toEqual({ path: '/usr/sbin/php-fpm8.2', deleted: true });
    expect(parseExeLink('/usr/sbin/php-fpm8.2')).toEqual({ path: '/usr/sbin/php-fpm8.2', deleted: false });
  });
});

describe('boot time and ticks', () => {
  test('btime and start ticks give an epoch and an age', () => {
    expect(CLOCK_TICKS_PER_SECOND).toBe(100);
    expect(parseBootTime('cpu  1 2 3\nintr 5\nbtime 1763700000\nprocesses 12\n')).toBe(1_763_700_000);
    expect(() => parseBootTime('cpu 1 2 3\n')).toThrow(ProcFormatError);
    expect(startTimeEpochMs(31458, 1_763_700_000)).toBe(1_763_700_000_000 + 314_580);
    expect(processAgeMs(31458, 1_763_700_000, 1_763_700_000_000 + 400_000)).toBe(85_420);
  });

  test('on this machine, our own start time is within seconds of now', async () => {
    const system = createRealSystem();
    const me = await readProcess(system, process.pid);
    const age = processAgeMs(me?.startTimeTicks ?? -1, await readBootTimeSeconds(system), Date.now());
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(process.uptime() * 1000 + 3000);
  });
});

describe('readProcess and listStats with a fake system', () => {
  const master = {
    pid: 9770,
    ppid: 1,
    sessionId: 9770,
    processGroupId: 9770,
    startTimeTicks: 31458,
    comm: 'php-fpm8.2',
    exe: '/usr/sbin/php-fpm8.2',
    cmdline: titleCmdline(masterTitle(CONFIG)),
  };

  test('reads every field', async () => {
    const system = new FakeSystem().addProcess(master);
    expect(await readProcess(system, 9770)).toEqual({
      pid: 9770,
      ppid: 1,
      state: 'S',
      sessionId: 9770,
      processGroupId: 9770,
      startTimeTicks: 31458,
      comm: 'php-fpm8.2',
      exe: '/usr/sbin/php-fpm8.2',
      exeDeleted: false,
      cmdline: [masterTitle(CONFIG)],
      uid: 0,
      effectiveUid: 0,
    });
  });

  test('a missing process and a zombie are both null', async () => {
    const system = new FakeSystem().addProcess({ ...master, state: 'Z', cmdline: '', exe: undefined });
    expect(await readProcess(system, 9770)).toBeNull();
    expect(await readProcess(system, 9771)).toBeNull();
  });

  test('an unreadable or deleted executable', async () => {
    const system = new FakeSystem().addProcess({ ...master, exe: null }).addProcess({ ...master, pid: 9771, exe: '/usr/sbin/php-fpm8.2 (deleted)' });
    expect(await readProcess(system, 9770)).toMatchObject({ exe: null, exeDeleted: false });
    expect(await readProcess(system, 9771)).toMatchObject({ exe: '/usr/sbin/php-fpm8.2', exeDeleted: true });
  });

  test('a pid reused while its files are read is read again, never mixed', async () => {
    const system = new FakeSystem().addProcess(master);
    const readlink = system.readlink.bind(system);
    let swapped = false;
    system.readlink = async (path: string) => {
      const target = await readlink(path);
      if (!swapped) {
        swapped = true; // the master exits and pid 9770 goes to `sleep` before the last stat read
        system.addProcess({ pid: 9770, startTimeTicks: 99999, comm: 'sleep', exe: '/usr/bin/sleep', cmdline: 'sleep\x0030\0' });
      }
      return target;
    };
    expect(await readProcess(system, 9770)).toMatchObject({ startTimeTicks: 99999, exe: '/usr/bin/sleep', cmdline: ['sleep', '30'] });
  });

  test('listStats skips processes that vanish mid-scan and zombies; the full views built on it', async () => {
    const system = new FakeSystem()
      .addProcess(master)
      .addProcess({ pid: 9771, ppid: 9770, sessionId: 9770, processGroupId: 9770, exe: master.exe, cmdline: titleCmdline('php-fpm: pool www') })
      .addProcess({ pid: 9772, ppid: 1, sessionId: 9770, processGroupId: 9770, exe: master.exe, cmdline: titleCmdline('php-fpm: pool www') })
      .addProcess({ pid: 9773, ppid: 9770, state: 'Z', sessionId: 9770 })
      .addProcess({ pid: 500, ppid: 1, sessionId: 500, exe: '/usr/sbin/sshd', cmdline: 'sshd\0' });
    const readdir = system.readdir.bind(system);
    system.readdir = async (path: string) => [...(await readdir(path)), '31000']; // listed, gone before read
    expect((await listStats(system)).map((stat) => stat.pid).sort((a, b) => a - b)).toEqual([500, 9770, 9771, 9772]);
    const all = await listProcesses(system);
    expect(all.map((p) => p.pid)).toEqual([500, 9770, 9771, 9772]);
    expect(findChildren(all, 9770).map((p) => p.pid)).toEqual([9771]);
    expect(findBySession(all, 9770).map((p) => p.pid)).toEqual([9770, 9771, 9772]);
  });
});

describe('verifyIdentity', () => {
  const BINARY = '/usr/sbin/php-fpm8.2';
  const master: ProcessInfo = {
    pid: 9770,
    ppid: 1,
    state: 'S',
    sessionId: 9770,
    processGroupId: 9770,
    startTimeTicks: 31458,
    comm: 'php-fpm8.2',
    exe: BINARY,
    exeDeleted: false,
    cmdline: [masterTitle(CONFIG)],
    uid: 0,
    effectiveUid: 0,
  };
  const worker: ProcessInfo = { ...master, pid: 9771, ppid: 9770, cmdline: ['php-fpm: pool www'] };
  const asMaster: ExpectedIdentity = { binary: BINARY, config: CONFIG };
  const asWorker: ExpectedIdentity = { role: 'worker', binary: BINARY, sessionId: 9770 };

  test.each<[string, ProcessInfo, ExpectedIdentity]>([
    ['the master', master, asMaster],
    ['the master, explicitly', master, { ...asMaster, role: 'master' }],
    ['the master with its recorded start time', master, { ...asMaster, startTimeTicks: 31458 }],
    ['the master after an upgrade replaced its binary', { ...master, exeDeleted: true }, asMaster],
    ['a worker', worker, asWorker],
    ['an orphaned worker (ppid 1, same session)', { ...worker, ppid: 1 }, asWorker],
    ['a worker of another pool', { ...worker, cmdline: ['php-fpm: pool api'] }, asWorker],
  ])('accepts %s', (_name, proc, expected) => {
    expect(verifyIdentity(proc, expected)).toEqual({ ok: true });
  });

  test.each<[string, ProcessInfo, ExpectedIdentity, string]>([
    ['another binary', { ...master, exe: '/usr/sbin/php-fpm8.3' }, asMaster, 'runs /usr/sbin/php-fpm8.3, not /usr/sbin/php-fpm8.2'],
    ['another binary, deleted', { ...master, exe: '/opt/old/php-fpm', exeDeleted: true }, asMaster, 'runs /opt/old/php-fpm (deleted)'],
    ['an unreadable executable', { ...master, exe: null }, asMaster, 'cannot be read from /proc/9770/exe'],
    ['sleep', { ...master, exe: '/usr/bin/sleep', cmdline: ['sleep', '30'] }, asMaster, 'runs /usr/bin/sleep'],
    ['the master of another config', { ...master, cmdline: [masterTitle('/etc/php-fpm-multi/api.conf')] }, asMaster, 'is not "php-fpm: master process (/etc/php-fpm-multi/web.conf)"'],
    ['a config path with a longer name', { ...master, cmdline: [masterTitle(`${CONFIG}.bak`)] }, asMaster, 'is not'],
    ['the same config by a relative path', { ...master, cmdline: [masterTitle('web.conf')] }, asMaster, 'is not'],
    ['a truncated title', { ...master, cmdline: ['php-fpm: master process (/etc/php-fpm-m'] }, asMaster, 'is not'],
    ['php-fpm before it set its title', { ...master, cmdline: [BINARY, '--fpm-config', CONFIG, '-D'] }, asMaster, 'is not'],
    ['a title with extra arguments', { ...master, cmdline: [masterTitle(CONFIG), ''] }, asMaster, 'is not'],
    ['a worker taken for the master', worker, asMaster, 'is not "php-fpm: master process'],
    ['a pid reused by another master', { ...master, startTimeTicks: 50000 }, { ...asMaster, startTimeTicks: 31458 }, 'started at tick 50000, not 31458'],
    ['the master taken for a worker', master, asWorker, 'is not a php-fpm worker'],
    ['a worker of another session', { ...worker, sessionId: 12000 }, asWorker, 'belongs to session 12000'],
    ['a session leader with a worker title', { ...worker, pid: 9770 }, asWorker, 'belongs to session 9770'],
    ['a worker of another binary', { ...worker, exe: '/usr/sbin/php-fpm8.3' }, asWorker, 'runs /usr/sbin/php-fpm8.3'],
  ])('rejects %s', (_name, proc, expected, reason) => {
    const verdict = verifyIdentity(proc, expected);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toContain(reason);
    expect(verdict.ok ? '' : verdict.reason).toContain(`pid ${proc.pid}`);
  });

  test('resolveExecutablePath resolves symlinks and keeps a missing path as given', async () => {
    const system = new FakeSystem().addDirectories('/usr/sbin').addFile('/usr/sbin/php-fpm8.2', '').addSymlink('/usr/sbin/php-fpm', 'php-fpm8.2');
    expect(await resolveExecutablePath(system, '/usr/sbin/php-fpm')).toBe('/usr/sbin/php-fpm8.2');
    expect(await resolveExecutablePath(system, '/usr/sbin/php-fpm8.1')).toBe('/usr/sbin/php-fpm8.1');
  });
});

// ---- real processes ---------------------------------------------------------------------------

const system: System = createRealSystem();
const children: ChildProcess[] = [];
/** Session ids of php-fpm masters we started: their whole process group is killed at the end. */
const fpmSessions = new Set<number>();

function startChild(command: string, args: string[], detached = false): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore', detached });
  children.push(child);
  return child;
}


async function killFpmSessions(dir: string): Promise<void> {
  // Masters we recorded, and any master whose title names our scratch directory (recorded or not).
  const scratch = `${dir}/`; // never '' (which every title includes)
  for (const p of await listProcesses(system)) {
    if (dir !== '' && p.pid === p.processGroupId && p.cmdline.some((arg) => arg.includes(scratch))) fpmSessions.add(p.pid);
  }
  for (const sid of fpmSessions) {
    if (sid === system.processGroupId) continue;
    try {
      process.kill(-sid, 'SIGKILL'); // master and workers share the process group the master leads
    } catch {
      /* already gone */
    }
  }
  fpmSessions.clear();
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('real processes', () => {
  test('our own process', async () => {
    const me = await readProcess(system, process.pid);
    expect(me).toMatchObject({ pid: process.pid, processGroupId: system.processGroupId, exe: realpathSync(process.execPath), exeDeleted: false });
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.cmdline).toEqual(parseCmdline(readFileSync('/proc/self/cmdline', 'utf8')));
    expect(me?.cmdline).toContain(process.argv[1]);
  });

  test('a process whose comm is "(a) b)" is parsed from its real /proc/PID/stat', async () => {
    const child = startChild(process.execPath, ['-e', 'process.title = "(a) b)"; setInterval(() => {}, 1000)']);
    const pid = child.pid ?? -1;
    const proc = await until('the title', async () => {
      const p = await readProcess(system, pid);
      return p?.comm === '(a) b)' ? p : null;
    });
    // Running or sleeping, depending on how far node got after setting its title: the subject is the comm.
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/^\d+ \(\(a\) b\)\) [RS] /);
    expect(proc).toMatchObject({ pid, ppid: process.pid, state: expect.stringMatching(/^[RS]$/), cmdline: ['(a) b)'], exe: realpathSync(process.execPath) });
  });

  test('a zombie counts as gone although kill(pid, 0) still succeeds', async () => {
    // sh forks `sleep 0`, then becomes `sleep 30`, which never reaps it.
    const parent = startChild('sh', ['-c', 'sleep 0 & exec sleep 30']);
    const parentPid = parent.pid ?? -1;
    const zombiePid = await until('a zombie child', async () => {
      for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        try {
          const stat = parseStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
          if (stat.ppid === parentPid && stat.state === 'Z') return stat.pid;
        } catch {
          /* vanished */
        }
      }
      return null;
    });
    expect(() => process.kill(zombiePid, 0)).not.toThrow();
    expect(await readProcess(system, zombiePid)).toBeNull();
    expect((await listProcesses(system)).some((p) => p.pid === zombiePid)).toBe(false);
    expect(await readProcess(system, parentPid)).toMatchObject({ cmdline: ['sleep', '30'], exe: realpathSync('/usr/bin/sleep') });
  });
});

describe('a real php-fpm master', () => {
  let dir = '';
  const fpmBinary = (): string => {
    if (!existsSync(PHP_FPM)) {
      throw new Error(`${PHP_FPM} is missing: these tests need Debian's php8.2-fpm (apt-get install php8.2-fpm)`);
    }
    return PHP_FPM;
  };

  function writeConfig(name: string, extra = ''): string {
    const config = join(dir, `${name}.conf`);
    writeFileSync(
      config,
      `[global]\nerror_log = ${join(dir, `${name}.log`)}\n${extra}\n[www]\nuser = www-data\ngroup = www-data\n` +
        `listen = ${join(dir, `${name}.sock`)}\npm = static\npm.max_children = 2\n`,
    );
    return config;
  }

  async function launch(binary: string, config: string, pidfile: string) {
    const args = ['--fpm-config', config, '--pid', pidfile, '-D'];
    const result = await system.run(binary, args, { env: {}, timeoutMs: 20_000 });
    if (existsSync(pidfile)) {
      const pid = parsePidfile(readFileSync(pidfile, 'utf8'), pidfile);
      fpmSessions.add(pid);
      return { result, pid, argv: [binary, ...args] };
    }
    return { result, pid: null, argv: [binary, ...args] };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'proc-test-fpm-'));
  });
  afterAll(async () => {
    await killFpmSessions(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  test('master and workers as /proc shows them, identified; a sleep process is not', async () => {
    const binary = fpmBinary();
    const config = writeConfig('web');
    const pidfile = join(dir, 'web.pid');
    const { result, pid, argv } = await launch(binary, config, pidfile);
    expect(result).toMatchObject({ exitCode: 0, signal: null, timedOut: false });
    // The pidfile exists when the -D launcher exits 0, holding the bare pid (no newline).
    expect(readFileSync(pidfile, 'utf8')).toBe(String(pid));
    const masterPid = pid ?? -1;

    // The title is written over the original argv area and NUL padded to its exact length.
    const raw = readFileSync(`/proc/${masterPid}/cmdline`, 'latin1');
    const title = masterTitle(config);
    expect(raw).toBe(title + '\0'.repeat(argv.join('\0').length + 1 - title.length));

    const master = await readProcess(system, masterPid);
    expect(master).toMatchObject({
      pid: masterPid,
      sessionId: masterPid, // -D: setsid(), the master leads its session and process group
      processGroupId: masterPid,
      comm: 'php-fpm8.2',
      exe: binary,
      exeDeleted: false,
      cmdline: [title],
    });
    const expected = { binary: await resolveExecutablePath(system, binary), config, startTimeTicks: master?.startTimeTicks ?? -1 };
    expect(verifyIdentity(master as ProcessInfo, expected)).toEqual({ ok: true });
    expect(verifyIdentity(master as ProcessInfo, { ...expected, config: join(dir, 'other.conf') }).ok).toBe(false);
    expect(verifyIdentity(master as ProcessInfo, { ...expected, startTimeTicks: expected.startTimeTicks + 1 }).ok).toBe(false);

    const workers = await until('two titled workers', async () => {
      const found = findChildren(await listProcesses(system), masterPid);
      return found.length === 2 && found.every((w) => w.cmdline[0] === 'php-fpm: pool www') ? found : null;
    });
    for (const worker of workers) {
      expect(worker).toMatchObject({ ppid: masterPid, sessionId: masterPid, processGroupId: masterPid, exe: binary, cmdline: ['php-fpm: pool www'] });
      expect(verifyIdentity(worker, { role: 'worker', binary, sessionId: masterPid })).toEqual({ ok: true });
      expect(verifyIdentity(worker, expected).ok).toBe(false);
    }
    expect(findBySession(await listProcesses(system), masterPid).map((p) => p.pid).sort()).toEqual([masterPid, ...workers.map((w) => w.pid)].sort());

    const sleeper = startChild('sleep', ['30']);
    const sleep = await until('sleep', () => readProcess(system, sleeper.pid ?? -1));
    const verdict = verifyIdentity(sleep, expected);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toContain(`runs ${realpathSync('/usr/bin/sleep')}, not ${binary}`);

    // A second master on the same socket fails after forking: the launcher exits 70 (EX_SOFTWARE).
    const second = await launch(binary, config, join(dir, 'second.pid'));
    expect(second.result.exitCode).toBe(70);
    expect(second.result.stderr).toContain('Another FPM instance seems to already listen');
    expect(second.pid).toBeNull();
  });

  test('-t and -D exit 78 (EX_CONFIG) on a broken or missing config, before any fork', async () => {
    const binary = fpmBinary();
    const good = writeConfig('good');
    const broken = writeConfig('broken', 'BROKEN');
    const test = (config: string) => system.run(binary, ['-t', '--fpm-config', config], { env: {}, timeoutMs: 20_000 });
    expect((await test(good)).exitCode).toBe(0);
    expect((await test(broken)).exitCode).toBe(78);
    expect((await test(join(dir, 'missing.conf'))).exitCode).toBe(78);
    const launched = await launch(binary, broken, join(dir, 'broken.pid'));
    expect(launched.result.exitCode).toBe(78);
    expect(launched.pid).toBeNull();
  });

  test('reload (USR2) under -D: php-fpm re-execs and daemonizes again, so the master pid changes', async () => {
    const binary = fpmBinary();
    const config = writeConfig('reload');
    const pidfile = join(dir, 'reload.pid');
    const { result, pid } = await launch(binary, config, pidfile);
    expect(result.exitCode).toBe(0);
    const oldPid = pid ?? -1;
    const expected = { binary: await resolveExecutablePath(system, binary), config };
    expect((await signalVerified(system, oldPid, 'SIGUSR2', expected)).outcome).toBe('sent');
    const newPid = await until('a new pid in the pidfile', async () => {
      const content = existsSync(pidfile) ? readFileSync(pidfile, 'utf8') : '';
      return /^\d+$/.test(content) && Number(content) !== oldPid ? Number(content) : null;
    });
    fpmSessions.add(newPid);
    await until('the old master to be gone', async () => (await readProcess(system, oldPid)) === null);
    const master = await until('the new master', () => readProcess(system, newPid));
    expect(master).toMatchObject({ sessionId: newPid, cmdline: [masterTitle(config)] });
    expect(verifyIdentity(master, expected)).toEqual({ ok: true });
  });

  test('a SIGKILLed master leaves its pidfile and orphaned workers in its session', async () => {
    const binary = fpmBinary();
    const config = writeConfig('killed');
    const pidfile = join(dir, 'killed.pid');
    const { pid } = await launch(binary, config, pidfile);
    const masterPid = pid ?? -1;
    const expected = { binary: await resolveExecutablePath(system, binary), config };
    await until('two workers', async () => findChildren(await listProcesses(system), masterPid).length === 2);
    expect((await signalVerified(system, masterPid, 'SIGKILL', expected)).outcome).toBe('sent');
    await until('the master to be gone', async () => (await readProcess(system, masterPid)) === null);
    expect(readFileSync(pidfile, 'utf8')).toBe(String(masterPid)); // stale
    expect(await signalVerified(system, masterPid, 'SIGQUIT', expected)).toEqual({ outcome: 'gone' });
    const orphans = findBySession(await listProcesses(system), masterPid);
    expect(orphans).toHaveLength(2);
    for (const orphan of orphans) {
      expect(orphan).toMatchObject({ cmdline: ['php-fpm: pool www'], processGroupId: masterPid });
      expect(orphan.ppid).not.toBe(masterPid);
      expect((await signalVerified(system, orphan.pid, 'SIGTERM', { role: 'worker', binary, sessionId: masterPid })).outcome).toBe('sent');
    }
    for (const orphan of orphans) await until('the orphan to exit', async () => (await readProcess(system, orphan.pid)) === null);
  });

  test('a master whose binary was replaced (package upgrade) shows " (deleted)" and is still identified', async () => {
    const copy = join(dir, 'php-fpm-copy');
    copyFileSync(fpmBinary(), copy);
    const config = writeConfig('upgraded');
    const { result, pid } = await launch(copy, config, join(dir, 'upgraded.pid'));
    expect(result.exitCode).toBe(0);
    copyFileSync(copy, `${copy}.new`);
    renameSync(`${copy}.new`, copy); // as dpkg does: a new file renamed over the old one
    const master = await readProcess(system, pid ?? -1);
    expect(master).toMatchObject({ exe: copy, exeDeleted: true, cmdline: [masterTitle(config)] });
    expect(verifyIdentity(master as ProcessInfo, { binary: await resolveExecutablePath(system, copy), config })).toEqual({ ok: true });
  });
});
