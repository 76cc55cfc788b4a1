// The pure and fake-System parts of the second tryout's fixes (/work/wt/tryout2-findings.md): a
// record names its declaration file (1), a successor needs a pidfile in the run directory (2),
// the last run directory is remembered (3, 9), an unreadable record with a live master named by
// a pidfile elsewhere is unknown, never stopped (6), and a running orphan alone is status 1 (10c).
import { describe, expect, test } from 'vitest';
import { chooseExitCode } from '../../src/commands/status.js';
import type { UsableInstance } from '../../src/model/invocation.js';
import type { Instance, Model } from '../../src/model/instance.js';
import { inspectTarget } from '../../src/process/inspect.js';
import { forgetRunDir, pointerPath, readLastRunDir, rememberRunDir } from '../../src/process/last-run-dir.js';
import { masterTitle } from '../../src/process/proc.js';
import { readRecords, type InstanceRecord } from '../../src/process/record.js';
import type { DeclaredTarget, OrphanTarget } from '../../src/process/target.js';
import { chooseTargets } from '../../src/process/choice.js';
import type { Declared } from '../../src/process/declaration.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';

const CONFIG = '/etc/php-fpm-multi/t1.conf';
const BINARY = '/usr/sbin/php-fpm8.2';
const RUN = '/run/j';
const PIDS = '/run/pids';
const FILE = '/etc/conf.d/j';
const OTHER = '/etc/conf.d/php-fpm';

function system(): FakeSystem {
  return new FakeSystem().addDirectories(RUN).addDirectories(PIDS).addDirectories('/usr/sbin').addFile(BINARY, '', { mode: 0o755 });
}

function addMaster(fake: FakeSystem, pid: number, startTimeTicks: number): void {
  fake.addProcess({ pid, sessionId: pid, processGroupId: pid, startTimeTicks, exe: BINARY, cmdline: titleCmdline(masterTitle(CONFIG)) });
}

function record(extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return { name: 't1', binary: BINARY, config: CONFIG, pidfile: `${PIDS}/t1.pid`, pid: 900, startTimeTicks: 5000, uid: 0, ...extra };
}

function declaredTarget(pidfile: string, extra: Partial<DeclaredTarget> = {}): DeclaredTarget {
  const instance = { name: 't1', binary: BINARY, config: CONFIG, pidfile } as UsableInstance;
  return { kind: 'declared', name: 't1', instance, record: null, intent: null, recordProblem: null, pidfileProves: false, errorLog: null, pools: [], ...extra };
}

describe('finding 2: a successor needs a pidfile in the run directory', () => {
  test('the recorded master gone, a later master named by a pidfile elsewhere: crashed, that master never taken', async () => {
    const fake = system().addFile(`${PIDS}/t1.pid`, '950');
    addMaster(fake, 950, 6000); // another service's, started after the crash
    const inspection = await inspectTarget(fake, declaredTarget(`${PIDS}/t1.pid`, { record: record() }));
    expect(inspection).toMatchObject({ state: 'crashed', pid: 900, master: null });
    expect(inspection.detail).toContain(`${PIDS}/t1.pid now names pid 950, a php-fpm master of ${CONFIG} that php-fpm-multi cannot prove this file started`);
    const orphan: OrphanTarget = { kind: 'orphan', name: 't1', record: record(), why: 'undeclared' };
    expect((await inspectTarget(fake, orphan)).state).toBe('crashed');
  });

  test('the same pidfile in the run directory: the successor of a reload made outside the controller', async () => {
    const fake = system().addFile(`${RUN}/t1.pid`, '950');
    addMaster(fake, 950, 6000);
    const target = declaredTarget(`${RUN}/t1.pid`, { record: record({ pidfile: `${RUN}/t1.pid` }), pidfileProves: true });
    expect(await inspectTarget(fake, target)).toMatchObject({ state: 'running', pid: 950, recorded: false });
  });
});

test('finding 6: an unreadable record while a pidfile elsewhere names a live master: unknown, naming it', async () => {
  const fake = system().addFile(`${PIDS}/t1.pid`, '900');
  addMaster(fake, 900, 5000);
  const inspection = await inspectTarget(fake, declaredTarget(`${PIDS}/t1.pid`, { recordProblem: 'its record /run/j/t1.record.json is unreadable' }));
  expect(inspection).toMatchObject({ state: 'unknown', pid: 900, unreadableRecord: true, unprovenMaster: { pid: 900 } });
});

describe('finding 1: a record names the declaration file that wrote it', () => {
  test('another file’s record is set apart and named; one written before files were named is this file’s', async () => {
    const fake = system()
      .addFile(`${RUN}/a.record.json`, JSON.stringify({ ...record({ name: 'a' }), declaration: OTHER }))
      .addFile(`${RUN}/b.record.json`, JSON.stringify({ ...record({ name: 'b' }), declaration: FILE }))
      .addFile(`${RUN}/c.record.json`, JSON.stringify(record({ name: 'c' })));
    const read = await readRecords(fake, RUN, FILE);
    expect(read.records.map((r) => r.name)).toEqual(['b', 'c']);
    expect([...read.foreign.entries()]).toEqual([
      ['a', `${RUN}/a.record.json belongs to ${OTHER}, not ${FILE}: two declaration files share this run directory; give each its own FPM_run_dir`],
    ]);
    // Without a file to compare (a caller that does not know it), every record is read as before.
    expect((await readRecords(fake, RUN)).records.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  test('a declared instance whose name another file recorded here is refused, and the record is reported', () => {
    const instance = {
      name: 'a', variable: 'FPM_slot_a', line: 1, raw: [], slot: null, config: CONFIG, binary: BINARY, pidfile: `${RUN}/a.pid`, prefix: null, phpIni: null,
      iniScanDir: null, env: {}, args: [], nice: null, oomScoreAdj: null, user: null, group: null, startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true, problems: [],
    } as Instance;
    const model = { conf: FILE, runDir: RUN, instances: [instance], problems: [], conflicts: [], sharingProblems: new Set(), arrayVariables: [] } as unknown as Model;
    const declared: Declared = { conf: FILE, model, runDir: RUN, unusable: null };
    const why = `${RUN}/a.record.json belongs to ${OTHER}, not ${FILE}: …`;
    const prepared = chooseTargets(declared, { records: [], problems: [], foreign: new Map([['a', why]]) }, [], 'everything-recorded');
    expect(prepared.targets).toEqual([{ kind: 'unusable', name: 'a', pidfile: `${RUN}/a.pid`, reason: why, record: null, pidfileProves: false }]);
    expect(prepared.recordProblems).toEqual([why]);
  });
});

describe('findings 3 and 9: the last run directory', () => {
  const DEFAULT = '/run/php-fpm-multi/j';

  test('start points the default run directory at FPM_run_dir; a pointer to a directory still holding records is kept; stop forgets it once empty', async () => {
    const fake = system().addDirectories('/run/php-fpm-multi');
    expect(await rememberRunDir(fake, DEFAULT, FILE, RUN)).toBeNull();
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBe(RUN);
    expect(await readLastRunDir(fake, DEFAULT, OTHER)).toBeNull(); // another file of the same name: its own pointer
    expect(await pointerPath(DEFAULT, FILE)).not.toBe(await pointerPath(DEFAULT, OTHER));
    // FPM_run_dir changed while t1 runs from RUN: the pointer keeps naming RUN.
    fake.addFile(`${RUN}/t1.record.json`, JSON.stringify({ ...record({ pidfile: `${RUN}/t1.pid` }), declaration: FILE }));
    fake.addDirectories('/run/new');
    expect(await rememberRunDir(fake, DEFAULT, FILE, '/run/new')).toBeNull();
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBe(RUN);
    await forgetRunDir(fake, DEFAULT, FILE, RUN);
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBe(RUN); // still recorded there
    await fake.unlink(`${RUN}/t1.record.json`);
    await forgetRunDir(fake, DEFAULT, FILE, RUN);
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBeNull();
    // The default run directory itself needs no pointer.
    expect(await rememberRunDir(fake, DEFAULT, FILE, DEFAULT)).toBeNull();
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBeNull();
  });

  test('a pointer that cannot be believed is ignored: another file’s, a relative path, an untrusted default directory', async () => {
    const fake = system().addDirectories(DEFAULT);
    fake.addFile(await pointerPath(DEFAULT, FILE), JSON.stringify({ declaration: OTHER, runDir: RUN }));
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBeNull();
    fake.addFile(await pointerPath(DEFAULT, FILE), JSON.stringify({ declaration: FILE, runDir: 'run/j' }));
    expect(await readLastRunDir(fake, DEFAULT, FILE)).toBeNull();
    const open = system().addDirectories(DEFAULT, { mode: 0o777 });
    open.addFile(await pointerPath(DEFAULT, FILE), JSON.stringify({ declaration: FILE, runDir: RUN }));
    expect(await readLastRunDir(open, DEFAULT, FILE)).toBeNull();
  });
});

test('finding 10c: a running orphan alone is status 1 (running, not as declared), not 3', () => {
  expect(chooseExitCode([{ declared: true, enabled: true, state: 'stopped' }, { declared: false, enabled: false, state: 'orphan' }])).toBe(1);
  expect(chooseExitCode([{ declared: false, enabled: false, state: 'orphan' }])).toBe(1);
  expect(chooseExitCode([{ declared: true, enabled: true, state: 'stopped' }])).toBe(3);
  expect(chooseExitCode([{ declared: true, enabled: true, state: 'running' }, { declared: false, enabled: false, state: 'orphan' }])).toBe(0);
});
