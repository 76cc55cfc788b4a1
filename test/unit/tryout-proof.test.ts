// What proves a master this declaration file's (tryout findings 1, 6, 7, 8c), the lock's checks
// (8c) and the write probe before a reload or restart (3, 4), on a fake system.
import { describe, expect, test } from 'vitest';
import { inspectTarget } from '../../src/process/inspect.js';
import type { UsableInstance } from '../../src/model/invocation.js';
import { describeLockFile, describeLockProblem } from '../../src/process/lock.js';
import { masterTitle } from '../../src/process/proc.js';
import type { InstanceRecord, LaunchIntent } from '../../src/process/record.js';
import { errnoError } from '../../src/process/system.js';
import { isInRunDirectory, type DeclaredTarget, type LaunchedTarget } from '../../src/process/target.js';
import { describeUnwritable } from '../../src/process/write-probe.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';

const CONFIG = '/etc/php-fpm-multi/web.conf';
const BINARY = '/usr/sbin/php-fpm8.2';
const RUN = '/run/php-fpm-multi/php-fpm';
const SHARED = '/run/pids';

function systemWithMaster(pid = 900, startTimeTicks = 5000): FakeSystem {
  const system = new FakeSystem().addDirectories(RUN).addDirectories(SHARED).addDirectories('/usr/sbin').addFile(BINARY, '', { mode: 0o755 });
  system.addProcess({ pid, sessionId: pid, processGroupId: pid, startTimeTicks, exe: BINARY, cmdline: titleCmdline(masterTitle(CONFIG)) });
  return system;
}

function target(pidfile: string, extra: Partial<DeclaredTarget> = {}): DeclaredTarget {
  const instance = { name: 'web', binary: BINARY, config: CONFIG, pidfile } as UsableInstance;
  return {
    kind: 'declared', name: 'web', instance, record: null, intent: null, recordProblem: null, pidfileProves: isInRunDirectory(pidfile, RUN),
    errorLog: null, pools: [], ...extra,
  };
}

const intent = (launchTicks: number, deadlineTicks: number): LaunchIntent => ({
  name: 'web', binary: BINARY, config: CONFIG, pidfile: `${RUN}/web.pid`, uid: 0, launchTicks, deadlineTicks,
});

describe('without a record, only the run directory’s pidfile or a launch intent proves a master ours', () => {
  test('a pidfile in the run directory naming the master: running, found by the pidfile (adoptable)', async () => {
    const system = systemWithMaster().addFile(`${RUN}/web.pid`, '900');
    expect(await inspectTarget(system, target(`${RUN}/web.pid`))).toMatchObject({ state: 'running', pid: 900, recorded: false, foundBy: 'pidfile' });
  });

  test('a pidfile elsewhere naming the same master proves nothing: stopped, the master named as unowned', async () => {
    const system = systemWithMaster().addFile(`${SHARED}/web.pid`, '900');
    const inspection = await inspectTarget(system, target(`${SHARED}/web.pid`));
    expect(inspection).toMatchObject({ state: 'stopped', pid: null, unowned: { pid: 900 } });
  });

  test('a pidfile elsewhere that cannot be believed (another user’s directory) is no failure: stopped', async () => {
    const system = systemWithMaster().addDirectory('/run/php', { uid: 33 }).addFile('/run/php/x.pid', '900');
    const inspection = await inspectTarget(system, target('/run/php/x.pid'));
    expect(inspection.state).toBe('stopped');
    expect(inspection.detail).toContain('/run/php is owned by uid 33');
  });

  test('with its record, a pidfile elsewhere is followed as before', async () => {
    const record: InstanceRecord = { name: 'web', binary: BINARY, config: CONFIG, pidfile: `${SHARED}/web.pid`, pid: 900, startTimeTicks: 5000, uid: 0 };
    const system = systemWithMaster().addFile(`${SHARED}/web.pid`, '900');
    expect(await inspectTarget(system, target(`${SHARED}/web.pid`, { record }))).toMatchObject({ state: 'running', recorded: true, foundBy: 'record' });
  });

  test('a launch intent whose pidfile names a master started inside its window: running, found by the intent', async () => {
    const system = systemWithMaster(900, 5000).addFile(`${RUN}/web.pid`, '900');
    const undeclared: LaunchedTarget = { kind: 'launched', name: 'web', intent: intent(4900, 5100), why: 'undeclared' };
    expect(await inspectTarget(system, undeclared)).toMatchObject({ state: 'orphan', pid: 900, foundBy: 'intent', identity: { startTimeTicks: 5000 } });
    // Found without its pidfile too (killed before php-fpm wrote it): the only master of the window.
    const bare = systemWithMaster(900, 5000);
    expect(await inspectTarget(bare, undeclared)).toMatchObject({ state: 'orphan', pid: 900 });
  });

  test('a master started outside the launch window is not the launch’s', async () => {
    const system = systemWithMaster(900, 5000).addFile(`${RUN}/web.pid`, '900');
    const undeclared: LaunchedTarget = { kind: 'launched', name: 'web', intent: intent(5100, 5300), why: 'undeclared' };
    expect((await inspectTarget(system, undeclared)).state).toBe('stopped');
    const late: LaunchedTarget = { ...undeclared, intent: intent(4000, 4900) };
    expect((await inspectTarget(system, late)).state).toBe('stopped');
  });

  test('a record that cannot be read: unknown, unless its master is found through the run directory’s pidfile', async () => {
    const problem = `its record ${RUN}/web.record.json is unreadable (a FIFO)`;
    expect(await inspectTarget(systemWithMaster(), target(`${RUN}/web.pid`, { recordProblem: problem }))).toMatchObject({
      state: 'unknown', unreadableRecord: true, detail: problem,
    });
    const found = systemWithMaster().addFile(`${RUN}/web.pid`, '900');
    expect((await inspectTarget(found, target(`${RUN}/web.pid`, { recordProblem: problem }))).state).toBe('running');
  });
});

describe('the lock', () => {
  const stat = (kind: 'file' | 'symlink' | 'other', uid = 0, mode = 0o600) => ({ kind, uid, mode, gid: 0, dev: 1, ino: 1, size: 0 });

  test('what start and stop refuse, and check reports', () => {
    expect(describeLockFile(stat('file'), 0)).toBeNull();
    expect(describeLockFile(stat('other'), 0)).toBe('is not a regular file');
    expect(describeLockFile(stat('symlink'), 0)).toBe('is a symlink');
    expect(describeLockFile(stat('file', 65534), 0)).toContain('is owned by uid 65534');
    expect(describeLockFile(stat('file', 0, 0o644), 0)).toContain('can be opened by other users (mode 0644)');
  });

  test('check looks with lstat only: a missing lock is fine, a directory in its place is reported with the fix', async () => {
    const system = new FakeSystem().addDirectories(RUN);
    expect(await describeLockProblem(system, RUN)).toBeNull();
    system.addDirectory(`${RUN}/lock`);
    expect(await describeLockProblem(system, RUN)).toBe(
      `lock ${RUN}/lock: is not a regular file. Remove ${RUN}/lock while no php-fpm-multi command runs; it is recreated with mode 0600.`,
    );
  });
});

describe('the write probe before a reload’s signal or a restart’s stop', () => {
  test('writable: nothing is left behind', async () => {
    const system = new FakeSystem().addDirectories(RUN);
    expect(await describeUnwritable(system, `${RUN}/web.pid`, RUN)).toBeNull();
    expect(await system.readdir(RUN)).toEqual([]);
  });

  test('a full or read-only directory is named with the errno and the fix; the pidfile’s directory first', async () => {
    const system = new FakeSystem().addDirectories(RUN).addDirectories(SHARED);
    const refuse = (dir: string, code: string) => {
      system.writeFileAtomic = async (path) => {
        if (path.startsWith(`${dir}/`)) throw errnoError(code, 'write', path);
      };
    };
    refuse(RUN, 'ENOSPC');
    expect(await describeUnwritable(system, `${RUN}/web.pid`, RUN)).toBe(
      `php-fpm could not rewrite its pidfile in ${RUN}: no space left on the device (ENOSPC); free space in ${RUN}, then run the command again`,
    );
    // The pidfile elsewhere and writable: the run directory (records) is probed too.
    expect(await describeUnwritable(system, `${SHARED}/web.pid`, RUN)).toBe(
      `php-fpm-multi could not rewrite its record in ${RUN}: no space left on the device (ENOSPC); free space in ${RUN}, then run the command again`,
    );
    refuse(SHARED, 'EROFS');
    expect(await describeUnwritable(system, `${SHARED}/web.pid`, RUN)).toContain(
      `php-fpm could not rewrite its pidfile in ${SHARED}: read-only file system (EROFS); remount the file system of ${SHARED} read-write`,
    );
  });
});
