// The supervisor's pure parts: its keys in the model, the backoff, the state file's verdicts,
// and the held-down marks with scratch files of its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Declaration, ShellValue, Variable } from '../../src/declaration/declaration.js';
import { buildModel, type FileProbe } from '../../src/model/build.js';
import { createRealSystem } from '../../src/process/system.js';
import { readHeldMark, removeHeldMark, writeHeldMark } from '../../src/supervisor/marks.js';
import { describeSupervision, supervisedState, type SupervisorState } from '../../src/supervisor/state.js';
import { backoffMs } from '../../src/supervisor/policy.js';

const PROBE: FileProbe = { isFile: (f) => f === '/etc/php/a.conf' || f === '/usr/sbin/php-fpm8.2', isExecutable: (f) => f === '/usr/sbin/php-fpm8.2', listDirectory: () => [] };

function build(variables: Record<string, string>) {
  const declaration: Declaration = {
    file: '/etc/conf.d/php-fpm',
    variables: Object.entries(variables).map(([name, value], index): Variable => ({ name, value: { kind: 'string', value } as ShellValue, line: index + 1, column: 1 })),
  };
  return buildModel(declaration, { env: { PATH: '/usr/bin' }, uid: 0, probe: PROBE });
}

describe('supervisor keys', () => {
  test('restart_limit, health_restart and health_interval, per instance or in FPM_defaults', () => {
    const model = build({
      FPM_defaults: 'restart_limit=3/60 health_interval=2.5',
      FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf health_restart=3',
    });
    expect(model.problems).toEqual([]);
    expect(model.instances[0]).toMatchObject({ restartLimit: { count: 3, periodMs: 60_000 }, healthRestart: 3, healthIntervalMs: 2_500, problems: [] });
  });

  test('absent keys stay undefined (the supervisor applies its defaults)', () => {
    const [instance] = build({ FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf' }).instances;
    expect(instance!.restartLimit).toBeUndefined();
    expect(instance!.healthRestart).toBeUndefined();
  });

  test('bad values are problems of the instance, with the form to use', () => {
    const [instance] = build({ FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf restart_limit=5 health_restart=0 health_interval=-1' }).instances;
    expect(instance!.problems).toEqual([
      'restart_limit=5: must be COUNT/SECONDS, e.g. 5/300 (COUNT 1 to 1000, SECONDS 1 to 86400)',
      'health_restart=0: must be from 1 to 1000',
      'health_interval=-1: must be a number of seconds greater than 0 and at most 3600',
    ]);
  });

  test('FPM_supervise is known (the runscript reads it), not a likely typo', () => {
    expect(build({ FPM_supervise: 'yes', FPM_slot_a: 'slot=8.2 config=/etc/php/a.conf' }).problems).toEqual([]);
  });
});

test('the backoff: a first crash at once, then 1 s, 2 s, 4 s … up to 60 s', () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 20].map(backoffMs)).toEqual([0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

describe('status of a supervised instance', () => {
  const state: SupervisorState = {
    pid: 1234, start_time_ticks: 1, started_at: '2026-11-30T06:00:00.000Z', conf: '/etc/conf.d/php-fpm',
    instances: {
      a: { state: 'failed', restarts: 2, last_reason: 'pool a failed 3 pings', last_reason_at: '2026-11-30T06:01:00.000Z', next_attempt_at: null },
      b: { state: 'running', restarts: 0, last_reason: null, last_reason_at: null, next_attempt_at: null },
    },
  };

  test('failed only while it is not running and a supervisor says so', () => {
    expect(supervisedState(state, 'a', 'stopped')).toBe('failed');
    expect(supervisedState(state, 'a', 'running')).toBe('running');
    expect(supervisedState(null, 'a', 'stopped')).toBe('stopped');
  });

  test('restarts and the last reason; nothing for one that runs as started', () => {
    expect(describeSupervision(state, 'a')).toBe('supervised (failed): 2 restarts by the supervisor; last: pool a failed 3 pings at 2026-11-30T06:01:00.000Z');
    expect(describeSupervision(state, 'b')).toBeNull();
    expect(describeSupervision(null, 'a')).toBeNull();
  });
});

test('held-down marks: written by stop, read, removed by start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'php-fpm-multi-held-'));
  try {
    const system = createRealSystem();
    expect(await readHeldMark(system, dir, 'a')).toBeNull();
    await writeHeldMark(system, dir, 'a');
    expect((await readHeldMark(system, dir, 'a'))!.atMs).toBeGreaterThan(0);
    await removeHeldMark(system, dir, 'a');
    await removeHeldMark(system, dir, 'a'); // twice: nothing to remove is fine
    expect(await readHeldMark(system, dir, 'a')).toBeNull();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
