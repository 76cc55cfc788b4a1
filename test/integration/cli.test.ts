import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { makeScratchDir, runCli } from '../helpers/cli.js';

const PHP_FPM = '/usr/sbin/php-fpm8.2';
let scratch: ReturnType<typeof makeScratchDir>;
beforeEach(() => {
  scratch = makeScratchDir();
});
afterEach(() => scratch.remove());

/** A php-fpm config its own -t accepts (check runs it): one pool, logs in `dir`. */
function poolConfig(dir: string): string {
  return `[global]\nerror_log = ${dir}/a.log\n[a]\nuser = www-data\ngroup = www-data\nlisten = ${dir}/a.sock\npm = static\npm.max_children = 1\n`;
}

describe('the command line', () => {
  test('--help documents the commands and every exit code', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const text of ['Usage: php-fpm-multi [--conf FILE] [--style STYLE] [--json] <command> [instance…]', 'php-fpm-multi help COMMAND', '1,3-5', '--partial', '-q, --quiet']) {
      expect(result.stdout).toContain(text);
    }
    for (const text of ['list', 'check', 'start', 'stop', 'restart', 'reload', 'reopen', 'status', 'logs', 'configtest', 'health', 'discover', 'help'].map((c) => `\n  ${c} `)) {
      expect(result.stdout).toContain(text);
    }
    for (const code of ['0', '1', '2', '3', '4', '6', '32']) expect(result.stdout).toMatch(new RegExp(`^  ${code} +\\S`, 'm'));
  });

  test('--version prints the package version', async () => {
    expect(await runCli(['-V'])).toEqual({ code: 0, stdout: 'php-fpm-multi 0.1.0\n', stderr: '' });
  });

  test.each([
    [['--bogus', 'list'], 'unknown option --bogus; see php-fpm-multi --help'],
    [['frobnicate'], 'unknown command "frobnicate"; one of: list, check, start, stop, restart, reload, reopen, status, supervise, logs, configtest, health, discover, help'],
    [[], 'no command given; one of: list, check, start, stop, restart, reload, reopen, status, supervise, logs, configtest, health, discover, help'],
    [['--conf=', 'list'], '--conf needs a file name'],
    [['--partial', 'stop'], '--partial goes with start, not stop'],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const result = await runCli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`php-fpm-multi: ${message}\n`);
  });

  test('an unknown instance name is a usage error listing the known ones', async () => {
    const conf = scratch.write('php-fpm', `FPM_slot_a="slot=8.2 config=/x"\nFPM_slot_b="slot=8.2 config=/y"\n`);
    const result = await runCli(['--conf', conf, 'check', 'c']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no instance "c" in the declaration file (known: a, b)');
  });

  test('a missing declaration file exits 6 and says what to do', async () => {
    const result = await runCli(['--conf', `${scratch.dir}/none`, 'list']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain(`${scratch.dir}/none: no such file; copy the example`);
  });

  test('the file defaults to $PHP_FPM_MULTI_CONF, else ${EPREFIX}/etc/conf.d/php-fpm', async () => {
    const conf = scratch.write('php-fpm', 'FPM_slot_a="slot=8.2 config=/x"\n');
    const viaEnv = await runCli(['list', '--json'], { PHP_FPM_MULTI_CONF: conf });
    expect(JSON.parse(viaEnv.stdout).conf).toBe(conf);
    const viaPrefix = await runCli(['list'], { EPREFIX: scratch.dir });
    expect(viaPrefix.stderr).toContain(`${scratch.dir}/etc/conf.d/php-fpm: no such file`);
  });

  test('a refused file exits 6 with one error naming file:line:column, for every command', async () => {
    const conf = scratch.write('php-fpm', 'FPM_slot_1="slot=8.2"\nFPM_slot_2="config=$(touch /tmp/x)"\n');
    for (const command of ['list', 'check']) {
      const result = await runCli(['--conf', conf, command]);
      expect(result.code).toBe(6);
      expect(result.stderr).toMatch(new RegExp(`^php-fpm-multi: ${conf}:2:20: .*\\n$`));
    }
  });
});

describe('list', () => {
  test('--json has exactly the documented shape, problems included, and exits 0', async () => {
    const a = scratch.write('a.conf', '[global]\n');
    const conf = scratch.write(
      'php-fpm',
      [
        '# two instances',
        '',
        `FPM_slot_1=( "slot=php8.2" "config=${a}" )`,
        `FPM_slot_web="slot=8.2 confg=${a}"`,
      ].join('\n'),
    );
    const result = await runCli(['--conf', conf, '--json', 'list']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      conf,
      instances: [
        {
          name: '1', variable: 'FPM_slot_1', line: 3, raw: ['slot=php8.2', `config=${a}`], slot: 'php8.2', config: a,
          binary: PHP_FPM, pidfile: '/run/php-fpm-multi/php-fpm/1.pid', enabled: true,
          log: { kind: 'file', path: '/var/log/php-fpm.log', configured: false }, problems: [],
        },
        {
          name: 'web', variable: 'FPM_slot_web', line: 4, raw: ['slot=8.2', `confg=${a}`], slot: '8.2', config: null,
          binary: PHP_FPM, pidfile: '/run/php-fpm-multi/php-fpm/web.pid', enabled: true,
          log: { kind: 'unknown', why: expect.stringContaining('unknown key "confg"') },
          problems: [
            expect.stringContaining('unknown key "confg" (did you mean "config"?)'),
            'config= is missing; add e.g. "config=/etc/php/8.2/fpm/php-fpm.conf"',
          ],
        },
      ],
    });
  });

  test('the table names every instance and its problems', async () => {
    const conf = scratch.write('php-fpm', `FPM_slot_1="slot=8.2 config=${scratch.dir}/missing.conf enabled=no"\n`);
    const result = await runCli(['--conf', conf, 'list']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^NAME +SLOT +ENABLED +BINARY +CONFIG +PIDFILE +LOG +STATE$/m);
    expect(result.stdout).toMatch(new RegExp(`^1 +8\\.2 +no +${PHP_FPM} +${scratch.dir}/missing.conf .* 1 problem$`, 'm'));
    expect(result.stdout).toContain(`  FPM_slot_1: config=${scratch.dir}/missing.conf: no such file`);
  });
});

// check reads the run directory (trust, records of other files): the files are not named php-fpm,
// whose default run directory is the real service's (/run/php-fpm-multi/php-fpm) on a machine running it.
describe('check', () => {
  test('exit 0 when every enabled instance is usable; disabled ones are only noted', async () => {
    const a = scratch.write('a.conf', poolConfig(scratch.dir));
    const conf = scratch.write('php-fpm.check-test', `FPM_slot_1="slot=8.2 config=${a}"\nFPM_slot_2="slot=8.2 config=/nope enabled=no"\n`);
    const result = await runCli(['--conf', conf, 'check']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${conf}: 1 enabled instance usable\n`);
    expect(result.stderr).toContain('note: FPM_slot_2 (line 2, disabled): config=/nope: no such file');
  });

  test('exit 6 with each problem named by variable and line', async () => {
    const a = scratch.write('a.conf', poolConfig(scratch.dir));
    const conf = scratch.write('php-fpm.check-test', `FPM_slot_1="slot=8.2 config=${a} nice=99"\nFPM_solt_2="x"\n`);
    const result = await runCli(['--conf', conf, 'check']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain(`${conf}: FPM_slot_1 (line 1): nice=99: must be from -20 to 19\n`);
    expect(result.stderr).toContain(`${conf}: FPM_solt_2 (line 2): not a variable php-fpm-multi knows (did you mean "FPM_slot_2"?)`);
    expect(result.stderr).toContain(`${conf}: 2 problems; fix them and run php-fpm-multi check again\n`);
  });

  test('warns when the array form meets a /bin/sh that is not bash, with the string form to use', async () => {
    const shell = execFileSync('readlink', ['-f', '/bin/sh'], { encoding: 'utf8' }).trim();
    expect(shell).not.toMatch(/bash$/); // Debian's /bin/sh is dash
    const a = scratch.write('a.conf', poolConfig(scratch.dir));
    const conf = scratch.write('php-fpm.check-test', `FPM_slot_1=( "slot=8.2" "config=${a}" "env=GREETING=hi there" )\n`);
    const result = await runCli(['--conf', conf, 'check']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`uses bash arrays, but /bin/sh is ${shell}`);
    expect(result.stderr).toContain(`    FPM_slot_1="slot=8.2 config=${a} 'env=GREETING=hi there'"\n`);
  });
});

test('arrays in a file OpenRC sources (${EPREFIX}/etc/conf.d) under a /bin/sh that is not bash: check exits 6', async () => {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(`${scratch.dir}/etc/conf.d`, { recursive: true });
  const a = scratch.write('a.conf', poolConfig(scratch.dir));
  const conf = scratch.write('etc/conf.d/php-fpm', `FPM_slot_1=( "slot=8.2" "config=${a}" )\n`);
  const result = await runCli(['check'], { EPREFIX: scratch.dir });
  expect(result.code).toBe(6);
  expect(result.stderr).toContain(`error: ${conf} uses bash arrays, but /bin/sh is`);
  expect(result.stderr).toContain(`    FPM_slot_1="slot=8.2 config=${a}"\n`);
  expect(result.stderr).toContain('bash arrays cannot be sourced by /bin/sh: use the string form printed above');
});

describe('check and the file OpenRC sources (${EPREFIX}/etc/conf.d/*): arrays under a /bin/sh that is not bash', () => {
  async function checkArrays(relative: string, argv: (conf: string) => string[], env: (dir: string) => Record<string, string>): Promise<{ conf: string; result: Awaited<ReturnType<typeof runCli>> }> {
    const { mkdirSync } = await import('node:fs');
    const { dirname } = await import('node:path');
    mkdirSync(dirname(`${scratch.dir}/${relative}`), { recursive: true });
    const a = scratch.write('a.conf', poolConfig(scratch.dir));
    const conf = scratch.write(relative, `FPM_slot_1=( "slot=8.2" "config=${a}" )\n`);
    return { conf, result: await runCli(argv(conf), env(scratch.dir)) };
  }

  test.each<[string, string, (conf: string) => string[], (dir: string) => Record<string, string>, number, string]>([
    ['a second service\'s file, named with --conf', 'etc/conf.d/php-fpm.web', (conf) => ['--conf', conf, 'check'], (dir) => ({ EPREFIX: dir }), 6, 'error'],
    ['the default file, --style openrc', 'etc/conf.d/php-fpm', () => ['--style', 'openrc', 'check'], (dir) => ({ EPREFIX: dir }), 6, 'error'],
    ['a file outside conf.d', 'etc/other/php-fpm', (conf) => ['--conf', conf, 'check'], (dir) => ({ EPREFIX: dir }), 0, 'warning'],
    ['a conf.d directory of another prefix', 'etc/conf.d/php-fpm', (conf) => ['--conf', conf, 'check'], () => ({}), 0, 'warning'],
  ])('%s (%s): exit %i, an %s', async (_, relative, argv, env, code, severity) => {
    const { conf, result } = await checkArrays(relative, argv, env);
    expect(result.code, result.stderr).toBe(code);
    expect(result.stderr).toContain(`${severity}: ${conf} uses bash arrays, but /bin/sh is`);
    expect(result.stderr).toContain('FPM_slot_1="slot=8.2 config=');
  });

  test('under --style openrc the refusal is " * " lines, the rewrite indented under the first', async () => {
    const { conf, result } = await checkArrays('etc/conf.d/php-fpm', () => ['--style', 'openrc', 'check'], (dir) => ({ EPREFIX: dir }));
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(new RegExp(`^ \\* error: ${conf.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} uses bash arrays`));
    expect(result.stderr).toMatch(/^ {7}FPM_slot_1="slot=8\.2 config=/m);
    expect(result.stderr).toContain(' * ' + conf + ': bash arrays cannot be sourced by /bin/sh: use the string form printed above\n');
  });

  test('with ${EPREFIX}/bin/sh being bash (Gentoo Prefix), arrays are fine there: exit 0, nothing said about them', async () => {
    const { mkdirSync, symlinkSync } = await import('node:fs');
    mkdirSync(`${scratch.dir}/bin`, { recursive: true });
    symlinkSync('/bin/bash', `${scratch.dir}/bin/sh`);
    const { result } = await checkArrays('etc/conf.d/php-fpm', () => ['check'], (dir) => ({ EPREFIX: dir }));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('arrays');
  });
});

test.each(['start', 'restart', 'reload', 'reopen', 'configtest'])('%s with no enabled instance declared exits 6 and says how to declare one', async (command) => {
  const conf = scratch.write('php-fpm', `FPM_run_dir=${scratch.dir}/run\n`);
  const result = await runCli(['--conf', conf, command]);
  expect(result.code).toBe(6);
  expect(result.stderr).toContain(`${conf} declares no enabled instance, so nothing was`);
  expect(result.stderr).toContain('FPM_slot_1="slot=php8.2 config=');
});

test('stop and status with no instance declared succeed: there is nothing to stop', async () => {
  const conf = scratch.write('php-fpm', `FPM_run_dir=${scratch.dir}/run\n`);
  expect((await runCli(['--conf', conf, 'stop'])).code).toBe(0);
  expect((await runCli(['--conf', conf, 'status'])).code).toBe(3);
});

test('the compiled bin runs as the entry point and passes the exit code on', () => {
  expect(existsSync('dist/cli.js'), 'dist/cli.js is missing: run scripts/test (it builds first)').toBe(true);
  const help = spawnSync('dist/cli.js', ['--help'], { encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('Usage: php-fpm-multi');
  const usage = spawnSync('dist/cli.js', ['nope'], { encoding: 'utf8' });
  expect(usage.status).toBe(2);
  expect(usage.stderr).toContain('unknown command "nope"');
});
