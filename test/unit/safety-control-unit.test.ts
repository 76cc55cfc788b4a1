// Identity rules of the controller on a fake system: the owner, the start-time floor, and the
// states inspectTarget derives from a record and a pidfile (issue 9 cases 5 and 10, issue 10).
import { describe, expect, test } from 'vitest';
import { inspectTarget } from '../../src/process/inspect.js';
import type { Target } from '../../src/process/target.js';
import type { UsableInstance } from '../../src/model/invocation.js';
import { masterTitle, parseStatusUids, readProcess, verifyIdentity } from '../../src/process/proc.js';
import type { InstanceRecord } from '../../src/process/record.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';

const CONFIG = '/etc/php-fpm-multi/web.conf';
const OLD_BINARY = '/usr/sbin/php-fpm8.2';
const NEW_BINARY = '/usr/sbin/php-fpm8.3';
const RUN = '/run/php-fpm-multi/php-fpm';
const PIDFILE = `${RUN}/web.pid`;

function master(pid: number, startTimeTicks: number, extra: { uid?: number; exe?: string } = {}) {
  return {
    pid, sessionId: pid, processGroupId: pid, startTimeTicks, exe: extra.exe ?? OLD_BINARY, cmdline: titleCmdline(masterTitle(CONFIG)),
    ...(extra.uid === undefined ? {} : { uid: extra.uid }),
  };
}

function systemWith(...processes: ReturnType<typeof master>[]): FakeSystem {
  const system = new FakeSystem().addDirectories(RUN);
  for (const process of processes) system.addProcess(process);
  // resolveExecutablePath: both binaries exist as themselves.
  system.addDirectories('/usr/sbin').addFile(OLD_BINARY, '', { mode: 0o755 }).addFile(NEW_BINARY, '', { mode: 0o755 });
  return system;
}

function target(record: InstanceRecord | null, binary = OLD_BINARY): Target {
  const instance = { name: 'web', binary, config: CONFIG, pidfile: PIDFILE } as UsableInstance;
  return { kind: 'declared', name: 'web', instance, record, intent: null, recordProblem: null, pidfileProves: true, errorLog: null, pools: [] };
}

const record = (pid: number, startTimeTicks: number, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  name: 'web', binary: OLD_BINARY, config: CONFIG, pidfile: PIDFILE, pid, startTimeTicks, uid: 0, ...extra,
});

describe('the owner is part of identity', () => {
  test('parseStatusUids reads the real and effective uid', () => {
    expect(parseStatusUids('Name:\tphp-fpm8.2\nUmask:\t0022\nUid:\t33\t0\t0\t0\nGid:\t33\t33\t33\t33\n')).toEqual({ uid: 33, effectiveUid: 0 });
    expect(() => parseStatusUids('Name:\tx\n')).toThrow(/no Uid: line/);
  });

  test('a master of another user, with the right binary and title, is not ours', async () => {
    const system = systemWith(master(900, 5000, { uid: 65534 }));
    const proc = (await readProcess(system, 900))!;
    expect(proc.uid).toBe(65534);
    const verdict = verifyIdentity(proc, { binary: OLD_BINARY, config: CONFIG, uid: 0 });
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('runs as uid 65534 (effective 65534), not 0') });
    expect(verifyIdentity(proc, { binary: OLD_BINARY, config: CONFIG, uid: 65534 })).toEqual({ ok: true });
  });

  test('a master that started before the floor is not the one looked for', async () => {
    const system = systemWith(master(900, 5000));
    const proc = (await readProcess(system, 900))!;
    expect(verifyIdentity(proc, { binary: OLD_BINARY, config: CONFIG, startedAfterTicks: 5001 }).ok).toBe(false);
    expect(verifyIdentity(proc, { binary: OLD_BINARY, config: CONFIG, startedAfterTicks: 5000 }).ok).toBe(true);
  });
});

describe('inspectTarget', () => {
  test('identity comes from the record: an edited binary leaves the recorded master running', async () => {
    const system = systemWith(master(900, 5000));
    const inspection = await inspectTarget(system, target(record(900, 5000), NEW_BINARY));
    expect(inspection).toMatchObject({ state: 'running', pid: 900, recorded: true, identity: { binary: OLD_BINARY, startTimeTicks: 5000 } });
  });

  test('a successor of the recorded master (reload outside the controller) is followed through the pidfile', async () => {
    const system = systemWith(master(901, 5200)).addFile(PIDFILE, '901');
    const inspection = await inspectTarget(system, target(record(900, 5000), NEW_BINARY));
    expect(inspection).toMatchObject({ state: 'running', pid: 901, recorded: false, identity: { binary: OLD_BINARY } });
  });

  test('a master older than the recorded one named by the pidfile is stale, not a successor', async () => {
    const system = systemWith(master(901, 4000)).addFile(PIDFILE, '901');
    expect((await inspectTarget(system, target(record(900, 5000)))).state).toBe('stale');
  });

  test('a record marked stopping whose master is gone: stopped, with a pidfile naming the dead pid or without', async () => {
    const withPidfile = systemWith().addFile(PIDFILE, '900');
    expect(await inspectTarget(withPidfile, target(record(900, 5000, { stopping: true })))).toMatchObject({ state: 'stopped', interruptedStop: true, pid: 900 });
    expect(await inspectTarget(systemWith(), target(record(900, 5000, { stopping: true })))).toMatchObject({ state: 'stopped', interruptedStop: true });
    // Without the mark it is a crash.
    expect((await inspectTarget(systemWith(), target(record(900, 5000)))).state).toBe('crashed');
  });

  test('a master of another user named by our pidfile, without a record, is stale', async () => {
    const system = systemWith(master(900, 5000, { uid: 65534 })).addFile(PIDFILE, '900');
    const inspection = await inspectTarget(system, target(null));
    expect(inspection.state).toBe('stale');
    expect(inspection.detail).toContain('runs as uid 65534');
  });

  test('an empty pidfile is unknown, and says so', async () => {
    const system = systemWith().addFile(PIDFILE, '');
    expect(await inspectTarget(system, target(null))).toMatchObject({ state: 'unknown', emptyPidfile: true });
  });
});
