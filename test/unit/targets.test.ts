// Which kind of target a command gets for each instance and record (chooseTargets), and the
// process table a command reads once (ProcessTable).
import { describe, expect, test } from 'vitest';
import type { Instance, Model } from '../../src/model/instance.js';
import type { InstanceRecord } from '../../src/process/record.js';
import { chooseTargets } from '../../src/process/choice.js';
import type { Declared } from '../../src/process/declaration.js';
import { ProcessTable } from '../../src/process/terminate.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';

const RUN = '/run/php-fpm-multi/web';

function instance(name: string, extra: Partial<Instance> = {}): Instance {
  return {
    name, variable: `FPM_${name}`, line: 1, raw: [], slot: null, config: `/etc/php/${name}.conf`, binary: '/usr/sbin/php-fpm8.2',
    pidfile: `${RUN}/${name}.pid`, prefix: null, phpIni: null, iniScanDir: null, env: {}, args: [], nice: null, oomScoreAdj: null, user: null, group: null,
    startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true, problems: [], ...extra,
  };
}

function record(name: string): InstanceRecord {
  return { name, binary: '/usr/sbin/php-fpm8.2', config: `/etc/php/${name}.conf`, pidfile: `${RUN}/${name}.recorded.pid`, pid: 900, startTimeTicks: 5000, uid: 0 };
}

function declared(instances: Instance[], unusable: string | null = null): Declared {
  const model = { conf: '/etc/conf.d/web', runDir: RUN, instances, problems: [], conflicts: [], sharingProblems: new Set(), arrayVariables: [] } as Model;
  return { conf: model.conf, model: unusable === null ? model : null, runDir: RUN, unusable };
}

const kinds = (targets: readonly { name: string; kind: string }[]) => targets.map((target) => `${target.name}:${target.kind}`);

describe('chooseTargets', () => {
  const instances = [
    instance('a'), instance('broken', { problems: ['config missing'] }), instance('off', { enabled: false }),
    instance('off-broken', { enabled: false, problems: ['no binary'] }),
  ];
  const records = { records: [record('a'), record('gone'), record('off'), record('off-broken')], problems: [] };

  test("'selected': the enabled instances, an unusable one named as such, no record beyond them", () => {
    const { targets } = chooseTargets(declared(instances), records, [], 'selected');
    expect(kinds(targets)).toEqual(['a:declared', 'broken:unusable']);
    expect(targets[1]).toMatchObject({ kind: 'unusable', reason: 'config missing', pidfile: `${RUN}/broken.pid`, record: null });
  });

  test("'selected-and-recorded': and every other record, by what the file says of it", () => {
    const { targets } = chooseTargets(declared(instances), records, [], 'selected-and-recorded');
    expect(kinds(targets)).toEqual(['a:declared', 'broken:unusable', 'gone:orphan', 'off:declared', 'off-broken:unusable']);
    expect(targets[2]).toMatchObject({ why: 'undeclared' });
    // A disabled unusable instance is acted on by its record; status shows the recorded pidfile.
    expect(targets[4]).toMatchObject({ reason: 'no binary', pidfile: `${RUN}/off-broken.recorded.pid` });
  });

  test("'everything-recorded': names may name records", () => {
    expect(kinds(chooseTargets(declared(instances), records, ['gone'], 'everything-recorded').targets)).toEqual(['gone:orphan']);
    expect(() => chooseTargets(declared(instances), records, ['gone'], 'selected')).toThrow();
  });

  test('an unusable file: every record is an orphan that counts as declared', () => {
    const { targets } = chooseTargets(declared(instances, 'a stray FPM_ variable'), records, [], 'everything-recorded');
    expect(targets.map((target) => target.kind === 'orphan' && target.why)).toEqual(['file-unusable', 'file-unusable', 'file-unusable', 'file-unusable']);
  });

  test('what the preflight refuses makes a declared instance unusable', () => {
    const preflight = {
      instances: new Map([['a', { facts: { pools: [], errorLog: null, problem: null, config: null }, problems: ['pid = line'], warnings: [], notes: [] }]]),
      collisions: [], runDirProblem: null,
    };
    const { targets } = chooseTargets(declared(instances), records, ['a'], 'selected', preflight);
    expect(targets).toEqual([{ kind: 'unusable', name: 'a', pidfile: `${RUN}/a.pid`, reason: 'pid = line', record: record('a'), pidfileProves: true }]);
  });
});

describe('ProcessTable', () => {
  test('reads /proc once per command, however many instances ask', async () => {
    const system = new FakeSystem();
    system.addProcess({ pid: 900, sessionId: 900, processGroupId: 900, startTimeTicks: 5000, exe: '/usr/sbin/php-fpm8.2', cmdline: titleCmdline('php-fpm: master process (/etc/php/a.conf)') });
    const table = new ProcessTable(system);
    const first = await table.stats();
    system.addProcess({ pid: 901, sessionId: 901, processGroupId: 901, startTimeTicks: 5001, exe: '/usr/sbin/php-fpm8.2', cmdline: titleCmdline('php-fpm: master process (/etc/php/b.conf)') });
    expect(await table.stats()).toBe(first);
    expect((await table.leaders()).map((proc) => proc.pid)).toEqual([900]);
  });
});
