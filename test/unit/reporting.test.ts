// Unit tests of how php-fpm-multi speaks (src/cli/reporter.ts, src/cli/help.ts): the plain and
// the openrc style of each severity, --quiet, `help COMMAND` / `COMMAND --help`, and status's
// disabled instances, through main with the fake System.
import { describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/command.js';
import { describeCommand } from '../../src/cli/help.js';
import { COMMAND_OPTIONS, COMMANDS } from '../../src/cli/registry.js';
import { chooseReporting, reportError, reportInfo, reportWarning, writeText, type Reporting, type Severity } from '../../src/cli/reporter.js';
import { chooseExitCode } from '../../src/commands/status.js';
import { FakeSystem } from '../fixtures/fake-system.js';

interface Captured {
  io: Io;
  stdout: () => string;
  stderr: () => string;
}

function capture(reporting?: Reporting): Captured {
  let stdout = '';
  let stderr = '';
  const io: Io = { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text), env: {}, system: new FakeSystem(), ...(reporting === undefined ? {} : { reporting }) };
  return { io, stdout: () => stdout, stderr: () => stderr };
}

const REPORT: Record<Severity, (io: Io, message: string) => void> = { info: reportInfo, warning: reportWarning, error: reportError };
const NO_TERMINAL = { stdout: false, stderr: false };
const TERMINALS = { stdout: true, stderr: true };

describe('the plain style (default)', () => {
  test.each<[Severity, string, string]>([
    ['info', 'php-fpm-multi: a: started\n', ''],
    ['warning', '', 'php-fpm-multi: warning: a: started\n'],
    ['error', '', 'php-fpm-multi: a: started\n'],
  ])('%s: stdout %j, stderr %j', (severity, stdout, stderr) => {
    const out = capture();
    REPORT[severity](out.io, 'a: started');
    expect([out.stdout(), out.stderr()]).toEqual([stdout, stderr]);
  });

  test.each<[Severity, string]>([['info', ''], ['warning', ''], ['error', 'php-fpm-multi: a: broken\n']])('--quiet: %s prints %j', (severity, stderr) => {
    const out = capture(chooseReporting('plain', true, {}, NO_TERMINAL));
    REPORT[severity](out.io, 'a: broken');
    expect([out.stdout(), out.stderr()]).toEqual(['', stderr]);
  });
});

describe('the openrc style (libeinfo\'s einfo, ewarn, eerror)', () => {
  test.each<[Severity, Record<string, string>, { stdout: boolean; stderr: boolean }, string, string]>([
    ['info', {}, NO_TERMINAL, ' * a: started\n', ''],
    ['warning', {}, NO_TERMINAL, '', ' * warning: a: started\n'],
    ['error', {}, NO_TERMINAL, '', ' * a: started\n'],
    // Colours on a terminal: the star bold green, yellow or red, then clear to the end of the line.
    ['info', { TERM: 'xterm' }, TERMINALS, ' \u001b[1m\u001b[32m*\u001b[m a: started\u001b[K\n', ''],
    ['warning', { TERM: 'xterm' }, TERMINALS, '', ' \u001b[1m\u001b[33m*\u001b[m warning: a: started\u001b[K\n'],
    ['error', { TERM: 'xterm' }, TERMINALS, '', ' \u001b[1m\u001b[31m*\u001b[m a: started\u001b[K\n'],
    // No colour: EINFO_COLOR=NO (rc-service -C), RC_NOCOLOR=yes, TERM=dumb or unset, or no terminal.
    ['error', { TERM: 'xterm', EINFO_COLOR: 'NO' }, TERMINALS, '', ' * a: started\n'],
    ['error', { TERM: 'xterm', RC_NOCOLOR: 'yes' }, TERMINALS, '', ' * a: started\n'],
    ['error', { TERM: 'dumb' }, TERMINALS, '', ' * a: started\n'],
    ['error', {}, TERMINALS, '', ' * a: started\n'],
    ['error', { TERM: 'xterm' }, NO_TERMINAL, '', ' * a: started\n'],
    // EINFO_QUIET (rc-service -q) drops info and warnings; EERROR_QUIET (-qq) errors too.
    ['info', { EINFO_QUIET: 'yes' }, NO_TERMINAL, '', ''],
    ['warning', { EINFO_QUIET: 'YES' }, NO_TERMINAL, '', ''],
    ['error', { EINFO_QUIET: 'yes' }, NO_TERMINAL, '', ' * a: started\n'],
    ['error', { EERROR_QUIET: 'yes' }, NO_TERMINAL, '', ''],
    // EINFO_INDENT (eindent), at most 40 as in libeinfo.
    ['info', { EINFO_INDENT: '4' }, NO_TERMINAL, ' *     a: started\n', ''],
    ['info', { EINFO_INDENT: '99' }, NO_TERMINAL, ` * ${' '.repeat(40)}a: started\n`, ''],
  ])('%s with %j, terminals %j: stdout %j, stderr %j', (severity, env, terminal, stdout, stderr) => {
    const out = capture(chooseReporting('openrc', false, env, terminal));
    REPORT[severity](out.io, 'a: started');
    expect([out.stdout(), out.stderr()]).toEqual([stdout, stderr]);
  });

  test('a message of several lines: the lines after the first are indented under it', () => {
    const out = capture(chooseReporting('openrc', false, {}, NO_TERMINAL));
    reportError(out.io, 'a: not started: php-fpm said:\nERROR: bad line');
    expect(out.stderr()).toBe(' * a: not started: php-fpm said:\n   ERROR: bad line\n');
  });

  test('after an open ebegin line (EINFO_LASTCMD=ebegin, no colour terminal): each line starts on a new one, the last is left open for eend', () => {
    const out = capture(chooseReporting('openrc', false, { EINFO_LASTCMD: 'ebegin', TERM: 'dumb' }, TERMINALS));
    reportInfo(out.io, 'a: started');
    reportInfo(out.io, 'b: started');
    expect(out.stdout()).toBe('\n * a: started\n * b: started');
    writeText(out.io, 'TABLE\n');
    expect(out.stdout()).toBe('\n * a: started\n * b: started\nTABLE\n');
  });

  test('under EINFO_QUIET (rc-service -q) ebegin printed nothing: no line is open, an error is a whole line', () => {
    const out = capture(chooseReporting('openrc', false, { EINFO_LASTCMD: 'ebegin', EINFO_QUIET: 'yes' }, NO_TERMINAL));
    reportInfo(out.io, 'a: reloaded');
    reportError(out.io, 'b: not reloaded');
    expect([out.stdout(), out.stderr()]).toEqual(['', ' * b: not reloaded\n']);
  });

  test('on a colour terminal ebegin ended its line itself: nothing is added', () => {
    const out = capture(chooseReporting('openrc', false, { EINFO_LASTCMD: 'ebegin', TERM: 'xterm', EINFO_COLOR: 'YES' }, TERMINALS));
    reportInfo(out.io, 'a: started');
    expect(out.stdout()).toBe(' \u001b[1m\u001b[32m*\u001b[m a: started\u001b[K\n');
  });
});

async function run(argv: string[], env: Record<string, string> = {}, system = new FakeSystem()): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text), env, system });
  return { code, stdout, stderr };
}

describe('--style and --quiet on the command line', () => {
  test('--style openrc: a refusal is an eerror line', async () => {
    expect(await run(['--style', 'openrc', '--conf', '/etc/conf.d/absent', 'start'])).toMatchObject({ code: 6, stdout: '', stderr: expect.stringMatching(/^ \* \/etc\/conf\.d\/absent: no such file/) });
  });

  test('an unknown --style is a usage error naming the styles', async () => {
    expect(await run(['--style', 'fancy', 'status'])).toEqual({ code: 2, stdout: '', stderr: 'php-fpm-multi: unknown --style "fancy"; one of: plain, openrc\n' });
  });

  test.each(['start', 'stop', 'restart', 'reload'])('%s takes --quiet and -q', (command) => {
    expect(COMMANDS.find((entry) => entry.name === command)?.options).toContain('quiet');
    expect(COMMAND_OPTIONS.quiet.alias).toBe('q');
  });

  test.each([['-q'], ['--quiet']])('start %s: a failure is still printed, with its exit code', async (flag) => {
    const result = await run(['--conf', '/etc/conf.d/absent', 'start', flag]);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('/etc/conf.d/absent: no such file');
  });
});

describe('help COMMAND and COMMAND --help', () => {
  test.each(COMMANDS.map((entry) => [entry.name, entry] as const))('help %s: its usage, summary, every option it takes and its exit codes', async (name, entry) => {
    const result = await run(['help', name]);
    expect(result).toEqual({ code: 0, stdout: describeCommand(entry), stderr: '' });
    expect(result.stdout).toContain(`${name}: ${entry.summary}`);
    for (const option of entry.options) expect(result.stdout).toMatch(new RegExp(`^ +(?:-[a-z], )?--${option}\\b`, 'm'));
    for (const [code, meaning] of entry.exits) expect(result.stdout).toContain(`  ${String(code).padEnd(3)}${meaning}`);
    expect(entry.exits.map(([code]) => code)).toContain(0);
  });

  test.each(COMMANDS.map((entry) => [entry.name]))('%s --help is help %s', async (name) => {
    expect(await run([name, '--help'])).toEqual(await run(['help', name]));
  });

  test.each([
    [['help', 'nope'], /^php-fpm-multi: unknown command "nope"; one of: list, /],
    [['help', 'start', 'stop'], /^php-fpm-multi: help takes one command name, not 2/],
  ])('%j: exit 2', async (argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  test('help alone is --help', async () => {
    expect(await run(['help'])).toEqual(await run(['--help']));
  });
});

describe('status and disabled instances', () => {
  test.each<[string, Parameters<typeof chooseExitCode>[0], number]>([
    ['a running disabled instance does not make a stopped service running', [{ declared: true, enabled: true, state: 'stopped' }, { declared: true, enabled: false, state: 'running' }], 3],
    ['a crashed disabled instance does not make it crashed', [{ declared: true, enabled: true, state: 'running' }, { declared: true, enabled: false, state: 'crashed' }], 0],
    ['an unknown disabled instance does not make it unknown', [{ declared: true, enabled: true, state: 'running' }, { declared: true, enabled: false, state: 'unknown' }], 0],
    ['a stopped disabled instance does not make it partly running', [{ declared: true, enabled: true, state: 'running' }, { declared: true, enabled: false, state: 'stopped' }], 0],
  ])('%s', (_, instances, code) => {
    expect(chooseExitCode(instances)).toBe(code);
  });
});

describe('status lists disabled instances, marked, without changing its exit code', () => {
  function machine(): FakeSystem {
    return new FakeSystem()
      .addDirectories('/etc/conf.d')
      .addDirectories('/usr/sbin')
      .addFile('/usr/sbin/php-fpm8.2', '', { mode: 0o755 })
      .addFile('/etc/a.conf', '[global]\n[a]\nlisten = /run/a.sock\n')
      .addFile('/etc/b.conf', '[global]\n[b]\nlisten = /run/b.sock\n')
      .addFile(
        '/etc/conf.d/php-fpm',
        'FPM_slot_a="binary=/usr/sbin/php-fpm8.2 config=/etc/a.conf"\nFPM_slot_b="binary=/usr/sbin/php-fpm8.2 config=/etc/b.conf enabled=no"\nFPM_slot_c="binary=/usr/sbin/php-fpm8.2 config=/etc/missing.conf enabled=no"\n',
      );
  }

  test('text: the disabled ones are in the table, their state "disabled"; exit 3 as for the enabled one alone', async () => {
    const result = await run(['--conf', '/etc/conf.d/php-fpm', 'status'], {}, machine());
    expect(result.code, result.stderr).toBe(3);
    const states = Object.fromEntries(result.stdout.split('\n').slice(1).filter((line) => /^[abc] /.test(line)).map((line) => [line.split(/\s+/)[0], line.split(/\s+/)[2]]));
    expect(states).toEqual({ a: 'stopped', b: 'disabled', c: 'disabled' });
  });

  test('--json: every instance has "enabled"', async () => {
    const result = await run(['--conf', '/etc/conf.d/php-fpm', '--json', 'status'], {}, machine());
    expect(result.code, result.stderr).toBe(3);
    const parsed = JSON.parse(result.stdout) as { instances: Array<{ name: string; state: string; enabled: boolean }> };
    expect(parsed.instances.map(({ name, state, enabled }) => ({ name, state, enabled }))).toEqual([
      { name: 'a', state: 'stopped', enabled: true },
      { name: 'b', state: 'stopped', enabled: false },
      { name: 'c', state: expect.any(String), enabled: false },
    ]);
  });

  test('named, a disabled instance is shown as well (marked), and answers for itself: stopped is exit 3', async () => {
    const result = await run(['--conf', '/etc/conf.d/php-fpm', 'status', 'b'], {}, machine());
    expect(result.stdout).toMatch(/^b +\S+ +disabled /m);
    expect(result.code).toBe(3);
  });
});
