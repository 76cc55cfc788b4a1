import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE } from '../../src/exit-codes.js';
import { PID_MAX_LIMIT, readTrustedPidfile } from '../../src/process/pidfile.js';
import { masterTitle, readProcess, verifyIdentity, type ExpectedMaster } from '../../src/process/proc.js';
import { findBySession, listProcesses } from '../helpers/processes.js';
import { SignalNotPermittedError, SignalRefusedError, signalVerified, type FpmSignal } from '../../src/process/signal.js';
import { createRealSystem, type KillResult, type System } from '../../src/process/system.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';
import { until } from '../helpers/wait.js';

const BINARY = '/usr/sbin/php-fpm8.2';
const CONFIG = '/etc/php-fpm-multi/web.conf';
const EXPECTED: ExpectedMaster = { binary: BINARY, config: CONFIG };
const MASTER = {
  pid: 9770,
  sessionId: 9770,
  processGroupId: 9770,
  startTimeTicks: 31458,
  exe: BINARY,
  cmdline: titleCmdline(masterTitle(CONFIG)),
};

describe('signalVerified with a fake system', () => {
  test.each<[string, number]>([
    ['0 (our process group)', 0],
    ['1 (init)', 1],
    ['-1 (every process)', -1],
    ['-9770 (a process group)', -9770],
    ['a fraction', 9770.5],
    ['NaN', Number.NaN],
    ['above the kernel limit', PID_MAX_LIMIT + 1],
    ['our own pid', 40_000],
    ['our process group leader', 39_999],
  ])('refuses pid %s and signals nothing', async (_name, pid) => {
    // Even a process that would pass identity at that pid is not signalled.
    const system = new FakeSystem().addProcess({ ...MASTER, pid });
    let error: unknown;
    try {
      await signalVerified(system, pid, 'SIGTERM', EXPECTED);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SignalRefusedError);
    expect((error as SignalRefusedError).exitCode).toBe(EXIT_FAILURE);
    expect((error as Error).message).toContain(`refusing to send SIGTERM to pid ${pid}`);
    expect(system.kills).toEqual([]);
  });

  test('sends to the verified master', async () => {
    const system = new FakeSystem().addProcess(MASTER);
    const result = await signalVerified(system, 9770, 'SIGQUIT', { ...EXPECTED, startTimeTicks: 31458 });
    expect(result.outcome).toBe('sent');
    expect(system.kills).toEqual([{ pid: 9770, signal: 'SIGQUIT' }]);
  });

  test.each<[string, Parameters<FakeSystem['addProcess']>[0], ExpectedMaster, string]>([
    ['sleep', { pid: 9770, exe: '/usr/bin/sleep', cmdline: 'sleep\x0030\0' }, EXPECTED, 'runs /usr/bin/sleep'],
    ['another instance', { ...MASTER, cmdline: titleCmdline(masterTitle('/etc/other.conf')) }, EXPECTED, 'is not'],
    ['a reused pid', { ...MASTER, startTimeTicks: 40000 }, { ...EXPECTED, startTimeTicks: 31458 }, 'not 31458'],
    ['a master in our own process group', { ...MASTER, processGroupId: 39_999 }, EXPECTED, "php-fpm-multi's own process group"],
  ])('never signals a mismatch: %s', async (_name, proc, expected, reason) => {
    const system = new FakeSystem().addProcess(proc);
    for (const signal of ['SIGQUIT', 'SIGTERM', 'SIGKILL', 'SIGUSR2'] as const) {
      const result = await signalVerified(system, 9770, signal, expected);
      expect(result.outcome).toBe('mismatch');
      expect(result.outcome === 'mismatch' ? result.reason : '').toContain(reason);
    }
    expect(system.kills).toEqual([]);
  });

  test('a missing process or a zombie is gone, and not signalled', async () => {
    const system = new FakeSystem().addProcess({ ...MASTER, pid: 9771, state: 'Z' });
    expect(await signalVerified(system, 9770, 'SIGTERM', EXPECTED)).toEqual({ outcome: 'gone' });
    expect(await signalVerified(system, 9771, 'SIGTERM', EXPECTED)).toEqual({ outcome: 'gone' });
    expect(system.kills).toEqual([]);
  });

  test('a master that exits between the check and kill(2) is gone', async () => {
    const system = new FakeSystem().addProcess(MASTER);
    system.beforeKill = (pid) => system.processes.delete(pid);
    expect(await signalVerified(system, 9770, 'SIGTERM', EXPECTED)).toEqual({ outcome: 'gone' });
  });

  test('EPERM from the kernel is a typed error', async () => {
    class NotRoot extends FakeSystem {
      override kill(): KillResult {
        return 'EPERM';
      }
    }
    const system = new NotRoot().addProcess(MASTER);
    await expect(signalVerified(system, 9770, 'SIGTERM', EXPECTED)).rejects.toBeInstanceOf(SignalNotPermittedError);
  });

  test('workers are signalled only as members of the master session', async () => {
    const system = new FakeSystem()
      .addProcess({ pid: 9771, ppid: 1, sessionId: 9770, processGroupId: 9770, exe: BINARY, cmdline: titleCmdline('php-fpm: pool www') })
      .addProcess({ pid: 9880, ppid: 1, sessionId: 9880, processGroupId: 9880, exe: BINARY, cmdline: titleCmdline('php-fpm: pool www') });
    expect((await signalVerified(system, 9771, 'SIGKILL', { role: 'worker', binary: BINARY, sessionId: 9770 })).outcome).toBe('sent');
    expect((await signalVerified(system, 9880, 'SIGKILL', { role: 'worker', binary: BINARY, sessionId: 9770 })).outcome).toBe('mismatch');
    expect(system.kills).toEqual([{ pid: 9771, signal: 'SIGKILL' }]);
  });
});

// ---- the real system --------------------------------------------------------------------------

const FAKES = fileURLToPath(new URL('../fixtures/fake-fpm', import.meta.url));
const NODE = realpathSync(process.execPath);
const system: System = createRealSystem();
const children: ChildProcess[] = [];
const sessions = new Set<number>();
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'signal-test-'));
  writeFileSync(join(dir, 'fpm.conf'), '[global]\n');
  writeFileSync(join(dir, 'broken.conf'), '[global]\nBROKEN\n');
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  // Fake masters we know of, and any other whose title names our scratch directory (a test that
  // failed before recording it). A master leads its process group, which holds its workers.
  const scratch = `${dir}/`; // never '' (which every title includes)
  for (const p of await listProcesses(system)) {
    if (dir !== '' && p.pid === p.processGroupId && p.cmdline.some((arg) => arg.includes(scratch))) sessions.add(p.pid);
  }
  for (const sid of sessions) {
    if (sid === system.processGroupId) continue;
    try {
      process.kill(-sid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  sessions.clear();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});


async function stillThereAfter(pid: number, ms: number): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return (await readProcess(system, pid)) !== null;
}

describe('signalVerified with the real system', () => {
  test.each([
    ['in its own session', true],
    ['in our process group', false],
  ])('an unrelated sleep %s, named by a pidfile, is never signalled', async (_name, detached) => {
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore', detached });
    children.push(sleeper);
    const pid = sleeper.pid ?? -1;
    await until('sleep to exec', async () => (await readProcess(system, pid))?.cmdline[0] === 'sleep');
    const pidfile = join(dir, 'sleep.pid');
    writeFileSync(pidfile, `${pid}\n`);
    const fromPidfile = await readTrustedPidfile(system, pidfile);
    expect(fromPidfile).toBe(pid);
    for (const signal of ['SIGQUIT', 'SIGTERM', 'SIGKILL', 'SIGUSR2'] as const) {
      const result = await signalVerified(system, fromPidfile ?? -1, signal, { binary: BINARY, config: join(dir, 'fpm.conf') });
      expect(result.outcome).toBe('mismatch');
    }
    expect(await stillThereAfter(pid, 200)).toBe(true);
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
  });
});

describe('the fault-injection fake php-fpm programs', () => {
  interface Launched {
    exitCode: number | null;
    pid: number | null;
    config: string;
    pidfile: string;
    expected: ExpectedMaster;
  }

  async function launch(fixture: string, name: string, config = join(dir, 'fpm.conf')): Promise<Launched> {
    const pidfile = join(dir, `${name}.pid`);
    rmSync(pidfile, { force: true });
    const result = await system.run(NODE, [join(FAKES, fixture), '--fpm-config', config, '--pid', pidfile, '-D'], {
      env: { PATH: '/usr/bin:/bin' },
      timeoutMs: 20_000,
    });
    const pid = await readTrustedPidfile(system, pidfile);
    if (pid !== null) sessions.add(pid);
    return { exitCode: result.exitCode, pid, config, pidfile, expected: { binary: NODE, config } };
  }

  async function send(launched: Launched, signal: FpmSignal, pid = launched.pid ?? -1): Promise<void> {
    expect((await signalVerified(system, pid, signal, launched.expected)).outcome).toBe('sent');
  }

  async function gone(pid: number): Promise<void> {
    await until(`pid ${pid} to exit`, async () => (await readProcess(system, pid)) === null);
  }

  test('-t exits 0, or 78 on a config containing BROKEN or missing; -D with such a config too', async () => {
    const run = (args: string[]) => system.run(NODE, [join(FAKES, 'well-behaved.mjs'), ...args], { env: {}, timeoutMs: 20_000 });
    expect((await run(['-t', '--fpm-config', join(dir, 'fpm.conf')])).exitCode).toBe(0);
    expect((await run(['-t', '-y', join(dir, 'broken.conf')])).exitCode).toBe(78);
    expect((await run(['-t', '-y', join(dir, 'missing.conf')])).exitCode).toBe(78);
    const broken = await launch('well-behaved.mjs', 'broken', join(dir, 'broken.conf'));
    expect(broken).toMatchObject({ exitCode: 78, pid: null });
  });

  test('well-behaved: looks like a php-fpm master; QUIT stops it and removes the pidfile; its identity needs node as binary', async () => {
    const fpm = await launch('well-behaved.mjs', 'good');
    expect(fpm.exitCode).toBe(0);
    const pid = fpm.pid ?? -1;
    expect(readFileSync(fpm.pidfile, 'utf8')).toBe(String(pid));
    const master = await readProcess(system, pid);
    expect(master).toMatchObject({ sessionId: pid, processGroupId: pid, exe: NODE, cmdline: [masterTitle(fpm.config)] });
    expect(verifyIdentity(master ?? ({} as never), fpm.expected)).toEqual({ ok: true });
    // With php-fpm's binary expected, the fake is rejected: the exe check is real.
    expect((await signalVerified(system, pid, 'SIGQUIT', { binary: BINARY, config: fpm.config })).outcome).toBe('mismatch');
    await until('two titled workers', async () => {
      const members = findBySession(await listProcesses(system), pid).filter((p) => p.pid !== pid);
      return members.length === 2 && members.every((w) => verifyIdentity(w, { role: 'worker', binary: NODE, sessionId: pid }).ok);
    });
    await send(fpm, 'SIGQUIT');
    await gone(pid);
    expect(existsSync(fpm.pidfile)).toBe(false);
  });

  test('well-behaved: USR2 reloads into a new master pid, as php-fpm -D does', async () => {
    const fpm = await launch('well-behaved.mjs', 'reload');
    const oldPid = fpm.pid ?? -1;
    await send(fpm, 'SIGUSR2');
    const newPid = await until('a new pid in the pidfile', async () => {
      const pid = await readTrustedPidfile(system, fpm.pidfile);
      return pid !== null && pid !== oldPid ? pid : null;
    });
    sessions.add(newPid);
    await gone(oldPid);
    expect(verifyIdentity((await readProcess(system, newPid)) ?? ({} as never), fpm.expected)).toEqual({ ok: true });
    await send(fpm, 'SIGTERM', newPid);
    await gone(newPid);
  });

  test('ignores-quit: survives QUIT, TERM stops it', async () => {
    const fpm = await launch('ignores-quit.mjs', 'ignores-quit');
    const pid = fpm.pid ?? -1;
    await send(fpm, 'SIGQUIT');
    expect(await stillThereAfter(pid, 300)).toBe(true);
    await send(fpm, 'SIGTERM');
    await gone(pid);
  });

  test('ignores-quit-term: only KILL ends it, and its workers live on as orphans of its session', async () => {
    const fpm = await launch('ignores-quit-term.mjs', 'ignores-all');
    const pid = fpm.pid ?? -1;
    await send(fpm, 'SIGQUIT');
    await send(fpm, 'SIGTERM');
    expect(await stillThereAfter(pid, 300)).toBe(true);
    await send(fpm, 'SIGKILL');
    await gone(pid);
    expect(existsSync(fpm.pidfile)).toBe(true); // stale: names a dead pid
    expect(await signalVerified(system, pid, 'SIGTERM', fpm.expected)).toEqual({ outcome: 'gone' });
    // Reparenting may be seen a moment after the master is gone: wait for it, then assert it.
    const orphans = await until('orphaned workers, reparented', async () => {
      const found = findBySession(await listProcesses(system), pid);
      return found.length === 2 && found.every((orphan) => orphan.ppid !== pid) ? found : null;
    });
    for (const orphan of orphans) {
      expect(orphan.ppid).not.toBe(pid);
      expect((await signalVerified(system, orphan.pid, 'SIGTERM', fpm.expected)).outcome).toBe('mismatch'); // not a master
      expect((await signalVerified(system, orphan.pid, 'SIGTERM', { role: 'worker', binary: NODE, sessionId: pid })).outcome).toBe('sent');
      await gone(orphan.pid);
    }
  });

  test('dies-on-reload: USR2 kills it and leaves a stale pidfile', async () => {
    const fpm = await launch('dies-on-reload.mjs', 'dies');
    const pid = fpm.pid ?? -1;
    await send(fpm, 'SIGUSR2');
    await gone(pid);
    expect(await readTrustedPidfile(system, fpm.pidfile)).toBe(pid);
    expect(await signalVerified(system, pid, 'SIGQUIT', fpm.expected)).toEqual({ outcome: 'gone' });
  });

  test('no-pidfile: the launcher exits 0, a master runs, no pidfile ever appears', async () => {
    const fpm = await launch('no-pidfile.mjs', 'no-pidfile');
    expect(fpm).toMatchObject({ exitCode: 0, pid: null });
    const master = await until('the master by its title', async () =>
      (await listProcesses(system)).find((p) => verifyIdentity(p, fpm.expected).ok),
    );
    sessions.add(master.sessionId);
    expect(await stillThereAfter(master.pid, 300)).toBe(true);
    expect(existsSync(fpm.pidfile)).toBe(false);
    await send(fpm, 'SIGQUIT', master.pid);
    await gone(master.pid);
  });
});
