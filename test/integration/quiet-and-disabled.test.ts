// --quiet (start, stop, restart, reload: only failures printed, exit codes unchanged) and status
// with disabled instances (listed, marked, never counted unless named), with the real php8.2-fpm.
import { rmSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeFpmScratch, PHP_FPM, requirePrograms, type FpmScratch } from '../helpers/fpm.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(async () => {
  await runCli(['--conf', scratch.decl, 'stop']);
  scratch.remove();
});

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

function declare(): void {
  scratch.declare(
    ['a', 'b'].map((name) => `FPM_slot_${name}="slot=8.2 config=${scratch.writeConfig(name)}"`).join('\n') +
      `\nFPM_slot_spare="slot=8.2 config=${scratch.writeConfig('spare')} enabled=no"`,
  );
}

describe('--quiet', () => {
  test.each(['start', 'reload', 'restart', 'stop'])('%s -q when all goes well: nothing printed, exit 0 (without it: a line per instance)', async (command) => {
    declare();
    if (command !== 'start') expect((await cli('start')).code).toBe(0);
    const quiet = await cli(command, '-q');
    expect(quiet).toEqual({ code: 0, stdout: '', stderr: '' });
    if (command === 'stop') expect((await cli('start')).code).toBe(0);
    const loud = await cli(command === 'start' ? 'restart' : command);
    expect(loud.code).toBe(0);
    expect(loud.stdout).toMatch(/^php-fpm-multi: a: /m);
  });

  test('start --quiet with a failing instance: only the failure and the summary, exit 1 as without it', async () => {
    declare();
    rmSync(`${scratch.dir}/b/php-fpm.conf`);
    const result = await cli('start', '--quiet');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^php-fpm-multi: b: not started: config=\S+: no such file/m);
    expect(result.stderr).toContain('php-fpm-multi: not started: b (1 of 2)\n');
    expect(result.stderr).not.toMatch(/\ba: /);
  });
});

describe('status and a disabled instance', () => {
  const stateOf = (stdout: string, name: string) => stdout.split('\n').find((line) => line.startsWith(`${name} `))?.split(/\s+/)[2];

  test('listed as disabled; running (started by name) it is marked, and never makes the service look running', async () => {
    declare();
    const none = await cli('status');
    expect(none.code).toBe(3);
    expect(stateOf(none.stdout, 'spare')).toBe('disabled');
    const started = await cli('start', 'spare');
    expect(started.code, started.stderr).toBe(0);
    const onlyDisabled = await cli('status');
    expect(stateOf(onlyDisabled.stdout, 'spare')).toBe('running,disabled');
    // The enabled instances do not run: the service does not (3), whatever the disabled one does.
    expect(onlyDisabled.code).toBe(3);
    const json = JSON.parse((await cli('--json', 'status')).stdout) as { instances: Array<{ name: string; state: string; enabled: boolean }> };
    expect(json.instances.find((instance) => instance.name === 'spare')).toMatchObject({ state: 'running', enabled: false });
    expect(json.instances.find((instance) => instance.name === 'a')).toMatchObject({ state: 'stopped', enabled: true });
    // Named, it answers for itself.
    expect((await cli('status', 'spare')).code).toBe(0);
    expect((await cli('start')).code).toBe(0);
    expect((await cli('status')).code).toBe(0);
  });
});
