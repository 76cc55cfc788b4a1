// `logs` against real php8.2-fpm: each instance's error_log found in its config, shown prefixed;
// list and status --json name it; check warns about an instance without error_log (start still
// works); and the logrotate snippet of scripts/install.sh (installed under a scratch EPREFIX, so
// nothing under /etc is touched) passes `logrotate -d`, rotates for real with `logrotate -f`,
// reaches every instance with reopen, and `logs -f` follows both logs across it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { CGI_FCGI, CLI, declareInstances, makeFpmScratch, PHP_FPM, requirePrograms, type FpmScratch } from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

const LOGROTATE = '/usr/sbin/logrotate';
const INSTALL = join(import.meta.dirname, '..', '..', 'scripts', 'install.sh');
/** Generous: a loaded machine (load 20 on 2 CPUs) starts php-fpm slowly. */
const WAIT_MS = 60_000;

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, LOGROTATE));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** A php-fpm config of one pool with the [global] lines given (error_log or none). */
function writeConfig(name: string, global: string): string {
  const config = scratch.writeConfig(name);
  const text = readFileSync(config, 'utf8').replace(/^error_log = .*$/m, global);
  writeFileSync(config, text);
  return config;
}

describe('logs with real php-fpm', () => {
  test('shows each instance\'s error_log prefixed with its name, one alone without, and points a syslog instance at journalctl', async () => {
    declareInstances(scratch, ['la', 'lb']);
    const syslogConfig = writeConfig('lc', 'error_log = syslog\nsyslog.ident = fpm-lc-test');
    writeFileSync(scratch.decl, `${readFileSync(scratch.decl, 'utf8')}FPM_slot_lc="slot=8.2 config=${syslogConfig} enabled=no"\n`);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);

    const both = await cli('logs');
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/^la: \[[^\]]+\] NOTICE: ready to handle connections$/m);
    expect(both.stdout).toMatch(/^lb: \[[^\]]+\] NOTICE: ready to handle connections$/m);
    for (const line of both.stdout.trimEnd().split('\n')) expect(line).toMatch(/^l[ab]: /);

    const one = await cli('logs', 'la', '-n', '1');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(one.stdout).toMatch(/^\[[^\]]+\] NOTICE: /);

    const syslog = await cli('logs', 'lc');
    expect(syslog.code, syslog.stderr).toBe(0);
    expect(syslog.stderr).toContain('lc: php-fpm logs to syslog (ident fpm-lc-test, facility daemon): read it with "journalctl -t fpm-lc-test"');

    const unknown = await cli('logs', 'lx');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no instance "lx" in the declaration file');

    const list = JSON.parse((await cli('--json', 'list')).stdout) as { instances: { name: string; log: unknown }[] };
    expect(list.instances.map((i) => [i.name, i.log])).toEqual([
      ['la', { kind: 'file', path: join(scratch.dir, 'la', 'error.log'), configured: true }],
      ['lb', { kind: 'file', path: join(scratch.dir, 'lb', 'error.log'), configured: true }],
      ['lc', { kind: 'syslog', ident: 'fpm-lc-test', facility: 'daemon' }],
    ]);
    expect((await cli('list')).stdout).toMatch(/^lc .* syslog:fpm-lc-test +ok$/m);
    const status = JSON.parse((await cli('--json', 'status')).stdout) as { instances: { name: string; log: unknown }[] };
    expect(status.instances.find((i) => i.name === 'lb')?.log).toEqual({ kind: 'file', path: join(scratch.dir, 'lb', 'error.log'), configured: true });
  });

  test('check warns about an instance without error_log (php-fpm\'s default file, shared), and start still works', async () => {
    // With prefix= the default log/php-fpm.log lies in the scratch directory, not in /var/log.
    const prefix = join(scratch.dir, 'nolog');
    mkdirSync(join(prefix, 'log'), { recursive: true });
    const config = writeConfig('nolog', '');
    scratch.declare(`FPM_slot_nolog="slot=8.2 config=${config} prefix=${prefix}"`);
    const check = await cli('check');
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toContain(`${config} sets no error_log, so php-fpm writes to its default ${prefix}/log/php-fpm.log, which every other instance without error_log shares`);
    expect((await cli('start')).code).toBe(0);
    const logs = await cli('logs');
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/NOTICE: ready to handle connections/);
    expect(JSON.parse((await cli('--json', 'list')).stdout).instances[0].log).toEqual({ kind: 'file', path: `${prefix}/log/php-fpm.log`, configured: false });
  });
});

/** The existing www-data account: the user= of the instances below, who owns their log directory. */
const WWW_DATA = { uid: 33, gid: 33 };
/** What a user must never make root print: a root-only file. */
const SECRET = 'root-only-secret-line';

describe('logs as root, with a log in a directory a user owns', () => {
  let follower: ChildProcess | null = null;
  afterEach(() => {
    follower?.kill('SIGKILL');
    follower = null;
  });

  /** Instance la (root's log) and lu (user=www-data, its error_log in a directory www-data owns); returns lu's log path and the root-only file. */
  function declareUserLog(): { log: string; secret: string } {
    const secret = join(scratch.dir, 'secret');
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    const rootConfig = writeConfig('la', `error_log = ${join(scratch.dir, 'la', 'error.log')}`);
    writeFileSync(join(scratch.dir, 'la', 'error.log'), 'la line\n');
    const logDir = join(scratch.dir, 'lu-logs');
    mkdirSync(logDir, { mode: 0o755 });
    chownSync(logDir, WWW_DATA.uid, WWW_DATA.gid);
    const log = join(logDir, 'error.log');
    const userConfig = writeConfig('lu', `error_log = ${log}`);
    scratch.declare(`FPM_slot_la="slot=8.2 config=${rootConfig}"\nFPM_slot_lu="slot=8.2 config=${userConfig} user=www-data"`);
    return { log, secret };
  }

  test('the user\'s symlink to a root-only file is refused and never printed; the other log is still shown; the user\'s own file is shown', async () => {
    const { log, secret } = declareUserLog();
    symlinkSync(secret, log);
    spawnSync('chown', ['-h', 'www-data:www-data', log]);
    expect(lstatSync(log).uid).toBe(WWW_DATA.uid);
    const refused = await cli('logs');
    expect(refused.code).toBe(1);
    expect(refused.stdout).not.toContain(SECRET);
    expect(refused.stdout).toBe('la: la line\n');
    expect(refused.stderr).toContain(`lu: error_log ${log} is a symlink: logs never follows one`);

    // The user's own file there is that user's log: shown, its control characters escaped.
    spawnSync('rm', [log]);
    writeFileSync(log, 'lu line \x1b]0;title\x07\n');
    chownSync(log, WWW_DATA.uid, WWW_DATA.gid);
    const shown = await cli('logs', 'lu');
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toBe('lu line \\x1b]0;title\\x07\n');

    // Root's file in the user's directory (a hard link, a renamed directory of the user's) is refused.
    chownSync(log, 0, 0);
    const rootsFile = await cli('logs', 'lu');
    expect(rootsFile.code).toBe(1);
    expect(rootsFile.stderr).toContain(`is reached through ${join(scratch.dir, 'lu-logs')}, a directory owned by uid 33, not root`);
  });

  test('-f: the log swapped mid-follow for the user\'s symlink to a root-only file is refused, the file never printed', async () => {
    const { log, secret } = declareUserLog();
    writeFileSync(log, 'first line\n');
    chownSync(log, WWW_DATA.uid, WWW_DATA.gid);
    let output = '';
    let errors = '';
    follower = spawn(process.execPath, [CLI, '--conf', scratch.decl, 'logs', '-f', 'lu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    follower.stdout?.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    follower.stderr?.on('data', (chunk: Buffer) => void (errors += chunk.toString()));
    await until('logs -f to show the log', async () => output.includes('first line'), WAIT_MS);

    renameSync(log, `${log}.1`);
    symlinkSync(secret, log);
    spawnSync('chown', ['-h', 'www-data:www-data', log]);
    expect(lstatSync(log).uid).toBe(WWW_DATA.uid);
    await until('logs -f to refuse the symlink', async () => errors.includes(`${log} is a symlink: logs never follows one`), WAIT_MS);
    expect(output).not.toContain(SECRET);

    const exited = new Promise<number | null>((resolve) => follower?.on('exit', (code) => resolve(code)));
    follower.kill('SIGTERM');
    expect(await exited).toBe(0);
    follower = null;
    expect(output).not.toContain(SECRET);
  });
});

describe('the logrotate snippet', () => {
  let follower: ChildProcess | null = null;
  afterEach(() => {
    follower?.kill('SIGKILL');
    follower = null;
  });

  test('logrotate -d accepts it; logrotate -f rotates, every instance reopens into the new file, and logs -f follows across it', async () => {
    const eprefix = join(scratch.dir, 'prefix');
    const installed = spawnSync('sh', [INSTALL, `EPREFIX=${eprefix}`], { encoding: 'utf8', timeout: 300_000 });
    expect(installed.status, installed.stderr).toBe(0);
    const snippet = join(eprefix, 'etc', 'logrotate.d', 'php-fpm-multi');
    const logDir = join(eprefix, 'var', 'log', 'php-fpm-multi');
    expect(readFileSync(snippet, 'utf8')).toContain(`${logDir}/*.log {`);
    const state = join(scratch.dir, 'logrotate.state');
    const debug = spawnSync(LOGROTATE, ['-d', '-s', state, snippet], { encoding: 'utf8', timeout: 60_000 });
    expect(debug.status, debug.stderr).toBe(0);
    expect(debug.stderr).not.toMatch(/error/i);

    // The installed command and the declaration file it finds under EPREFIX, as the postrotate runs them.
    const command = join(eprefix, 'usr', 'bin', 'php-fpm-multi');
    const decl = join(eprefix, 'etc', 'conf.d', 'php-fpm');
    const lines = ['ra', 'rb'].map((name) => {
      const config = writeConfig(name, `error_log = ${logDir}/${name}.log`);
      return `FPM_slot_${name}="slot=8.2 config=${config}"`;
    });
    // rc runs as www-data: it cannot create its log in root's directory, so its log is made for it
    // (www-data:www-data 0640), and after a rotation logrotate's `create` must make the new one alike.
    const userConfig = writeConfig('rc', `error_log = ${logDir}/rc.log`);
    chownSync(join(scratch.dir, 'rc'), WWW_DATA.uid, WWW_DATA.gid); // its socket directory: php-fpm binds there as www-data
    writeFileSync(join(logDir, 'rc.log'), '');
    chownSync(join(logDir, 'rc.log'), WWW_DATA.uid, WWW_DATA.gid);
    chmodSync(join(logDir, 'rc.log'), 0o640);
    lines.push(`FPM_slot_rc="slot=8.2 config=${userConfig} user=www-data"`);
    writeFileSync(decl, `${lines.join('\n')}\nFPM_run_dir=${scratch.runDir}\n`);
    const started = spawnSync(command, ['start'], { encoding: 'utf8', timeout: 120_000 });
    expect(started.status, started.stderr).toBe(0);

    let output = '';
    follower = spawn(command, ['logs', '-f', '-n', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    follower.stdout?.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    let errors = '';
    follower.stderr?.on('data', (chunk: Buffer) => void (errors += chunk.toString()));
    await until('logs -f to show every log', async () => /^ra: /m.test(output) && /^rb: /m.test(output) && /^rc: /m.test(output), WAIT_MS);

    const rotated = spawnSync(LOGROTATE, ['-f', '-s', state, snippet], { encoding: 'utf8', timeout: 120_000 });
    expect(rotated.status, rotated.stderr).toBe(0);
    // create: the new rc.log has the old one's owner, group and mode.
    expect(statSync(join(logDir, 'rc.log'))).toMatchObject({ uid: WWW_DATA.uid, gid: WWW_DATA.gid });
    expect(statSync(join(logDir, 'rc.log')).mode & 0o7777).toBe(0o640);
    for (const name of ['ra', 'rb', 'rc']) {
      // The old file moved aside uncompressed (delaycompress); the reopen (postrotate) made php-fpm
      // create the new file and write its notice there.
      expect(readFileSync(join(logDir, `${name}.log.1`), 'utf8')).toMatch(/ready to handle connections/);
      await until(`${name} to write to its new log`, async () => existsSync(join(logDir, `${name}.log`)) && /error log file re-opened/.test(readFileSync(join(logDir, `${name}.log`), 'utf8')), WAIT_MS);
    }
    await until('logs -f to follow every new file', async () => ['ra', 'rb', 'rc'].every((name) => new RegExp(`^${name}: .*error log file re-opened$`, 'm').test(output)), WAIT_MS);
    expect(errors).toMatch(/ra: .*ra\.log has been replaced; following the new file/);

    const exited = new Promise<number | null>((resolve) => follower?.on('exit', (code) => resolve(code)));
    follower.kill('SIGTERM');
    expect(await exited).toBe(0);
    follower = null;
    expect(spawnSync(command, ['stop'], { encoding: 'utf8', timeout: 120_000 }).status).toBe(0);
  });
});
