// Process control against the real php8.2-fpm: every acceptance point of start, stop, restart,
// reload and status, with real masters, real workers and real FastCGI requests.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createRealSystem } from '../../src/process/system.js';
import { runCli } from '../helpers/cli.js';
import { isAlive, recordSignals } from '../helpers/processes.js';
import {
  CGI_FCGI, CLI, declareInstances, hideListeningSockets, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp,
  requirePrograms, runCliProcess, type FpmScratch,
} from '../helpers/fpm.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

describe('with real php-fpm', () => {
  test('three instances start in parallel, serve, reload while serving, and stop leaving nothing', async () => {
    declareInstances(scratch, ['a', 'b', 'c']);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout.match(/: started \(pid \d+\)/g)).toHaveLength(3);
    for (const name of ['a', 'b', 'c']) expect(requestPhp(scratch, name)).toBe(`hello from ${name}`);
    expect((await cli('status')).code).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toHaveLength(9); // 3 masters, 2 workers each

    const before = ['a', 'b', 'c'].map((name) => masterPid(scratch, name));
    const reloaded = await cli('reload');
    expect(reloaded.code, reloaded.stderr).toBe(0);
    const after = ['a', 'b', 'c'].map((name) => masterPid(scratch, name));
    after.forEach((pid, i) => expect(pid).not.toBe(before[i]));
    for (const name of ['a', 'b', 'c']) expect(requestPhp(scratch, name)).toBe(`hello from ${name}`);
    const status = await cli('--json', 'status');
    expect(JSON.parse(status.stdout).instances.map((i: { state: string; pid: number }) => [i.state, i.pid])).toEqual(after.map((pid) => ['running', pid]));

    const stopped = await cli('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect(existsSync(join(scratch.runDir, 'a.pid'))).toBe(false);
    expect(existsSync(join(scratch.runDir, 'a.record.json'))).toBe(false);
    expect((await cli('status')).code).toBe(3);
    expect((await cli('stop')).code).toBe(0); // stopping a stopped instance succeeds
  });

  test('start is idempotent and a named start touches only that instance', async () => {
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start', 'a')).code).toBe(0);
    const again = await cli('start', 'a');
    expect(again.stdout).toMatch(/a: already running \(pid \d+\)/);
    const status = await cli('status');
    expect(status.code).toBe(1); // some running, some stopped
    expect(status.stdout).toMatch(/^b +8\.2 +stopped/m);
  });

  test('a SIGKILLed master: status exits 32 naming it; start restarts only it and ends its orphaned workers', async () => {
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    const killed = masterPid(scratch, 'a');
    const untouched = masterPid(scratch, 'b');
    process.kill(killed, 'SIGKILL');
    while (isAlive(killed)) await new Promise((resolve) => setTimeout(resolve, 10));
    const orphans = listFpmProcesses(scratch.dir).length; // b's 3 processes; a's 2 workers have no master now
    expect(orphans).toBe(3);

    const status = await cli('status');
    expect(status.code).toBe(32);
    expect(status.stdout).toMatch(/^a +8\.2 +crashed/m);
    expect(status.stdout).toContain(`a: ${scratch.runDir}/a.pid names pid ${killed}, which is not running`);

    const restarted = await cli('start');
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stdout).toContain(`b: already running (pid ${untouched})`);
    expect(restarted.stdout).toMatch(/a: started \(pid \d+\); it had crashed .*; ended 2 orphaned workers/);
    expect(masterPid(scratch, 'b')).toBe(untouched);
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect((await cli('status')).code).toBe(0);
  });

  test('a pidfile naming an unrelated live process: it is never signalled and the state is stale', async () => {
    declareInstances(scratch, ['a']);
    const sleeper = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    try {
      mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
      writeFileSync(join(scratch.runDir, 'a.pid'), String(sleeper.pid));
      const { system, sent } = recordSignals();
      const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
      expect(status.code).toBe(32);
      expect(status.stdout).toMatch(/^a +8\.2 +stale/m);
      expect(status.stdout).toContain('names a process that is not this instance');
      const stopped = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
      expect(stopped.code).toBe(0);
      expect(stopped.stdout).toContain('nothing was signalled');
      expect(sent).toEqual([]);
      expect(isAlive(sleeper.pid!)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  test.each([
    ['empty', ''],
    ['zero', '0'],
    ['negative', '-1'],
    ['exponent', '1e3'],
    ['trailing garbage', '12abc'],
    ['huge', '99999999999999999999'],
    ['one (init)', '1'],
  ])('a corrupt pidfile (%s): no signal is sent, and the message says what to do', async (_case, content) => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const pidfile = join(scratch.runDir, 'a.pid');
    const master = masterPid(scratch, 'a');
    // Lose the record too, so nothing but the pidfile could name the master.
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(scratch.runDir, 'a.record.json'));
    writeFileSync(pidfile, content);
    const { system, sent } = recordSignals();
    const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
    expect(status.code).toBe(4);
    expect(status.stdout).toMatch(/^a +8\.2 +unknown/m);
    expect(status.stdout).toContain(`pidfile ${pidfile} does not contain a process id: found ${JSON.stringify(content)}`);
    const stop = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toContain(`a: not stopped: pidfile ${pidfile} does not contain a process id`);
    expect(stop.stderr).toContain(`If no php-fpm of this instance is running, remove ${pidfile}`);
    expect(sent).toEqual([]);
    expect(isAlive(master)).toBe(true);
  });

  test('a broken config at reload and at restart: exit 1 with php-fpm’s message, the old master keeps serving', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const master = masterPid(scratch, 'a');
    appendFileSync(join(scratch.dir, 'a', 'php-fpm.conf'), 'pm.max_children = many\n');
    for (const command of ['reload', 'restart']) {
      const result = await cli(command);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('configuration test failed');
      expect(result.stderr).toMatch(/ERROR: .*max_children/);
      expect(masterPid(scratch, 'a')).toBe(master);
      expect(requestPhp(scratch, 'a')).toBe('hello from a');
    }
    expect((await cli('configtest')).code).toBe(1);
  });

  test('a failed start names php-fpm’s reason and leaves the other instances running', async () => {
    declareInstances(scratch, ['a', 'b']);
    // b's pool user does not exist: php-fpm's own start-up refuses it (exit 70).
    appendFileSync(join(scratch.dir, 'b', 'php-fpm.conf'), 'user = no-such-user-here\n');
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/b: start failed: php-fpm exited with status 70\n.*no-such-user-here/);
    expect(started.stderr).toContain('not started: b (1 of 2)');
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    const status = await cli('status');
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^  b: last start failed at \d{4}-\d\d-\d\dT[\d:.]+Z: start failed: php-fpm exited with status 70.*no-such-user-here/m);
    const partial = await cli('start', '--partial');
    expect(partial.code).toBe(0);
    // Fixed and started, the explanation goes away.
    writeFileSync(join(scratch.dir, 'b', 'php-fpm.conf'), readFileSync(join(scratch.dir, 'b', 'php-fpm.conf'), 'utf8').replace('user = no-such-user-here\n', ''));
    expect((await cli('start', 'b')).code).toBe(0);
    expect((await cli('status')).stdout).not.toContain('last start failed');
  });

  test('start of a stopped instance launches it without a separate config test; a broken config fails with php-fpm’s lines, leaving no process', async () => {
    // Each broken the way an admin breaks a config; php-fpm's launch is the config test.
    const broken: Record<string, { edit: (config: string) => string; says: RegExp }> = {
      unknown: { edit: (text) => text.replace('[global]\n', '[global]\nbogus_directive = 1\n'), says: /exited with status 78\n.*\[\S*unknown\/php-fpm\.conf:2\] unknown entry 'bogus_directive'/ },
      badvalue: { edit: (text) => text.replace('[global]\n', '[global]\nlog_level = loud\n'), says: /exited with status 78\n.*\[\S*badvalue\/php-fpm\.conf:2\] unable to parse value for entry 'log_level'/ },
      baduser: { edit: (text) => text.replace('user = www-data', 'user = no-such-user-fs'), says: /exited with status 70\n.*\[pool baduser\] cannot get uid for user 'no-such-user-fs'/ },
      errlog: { edit: (text) => text.replace(/error_log = .*/, `error_log = ${join(scratch.dir, 'errlog', 'missing', 'error.log')}`), says: /exited with status 78\n.*failed to open error_log \(\S*errlog\/missing\/error\.log\): No such file or directory/ },
      // The next two never reach php-fpm: the preflight refuses them naming the config's line.
      include: { edit: (text) => text.replace('[global]\n', `[global]\ninclude = ${join(scratch.dir, 'include', 'missing')}/*.conf\n`), says: /not started: \S*include\/php-fpm\.conf:2: php-fpm cannot expand 'include = / },
      // A missing socket directory is created at start (src/process/socket-dirs.ts); one below a file cannot be.
      sockdir: {
        edit: (text) => text.replace(/listen = .*/, `listen = ${join(scratch.dir, 'sockdir', 'php-fpm.conf', 'sub', 'php-fpm.sock')}`),
        says: /not started: \S*sockdir\/php-fpm\.conf\/sub .*does not exist, and php-fpm-multi will not create it: \S*sockdir\/php-fpm\.conf is not a directory/,
      },
    };
    const names = ['a', ...Object.keys(broken), 'b'];
    declareInstances(scratch, names);
    for (const [name, { edit }] of Object.entries(broken)) {
      const config = join(scratch.dir, name, 'php-fpm.conf');
      writeFileSync(config, edit(readFileSync(config, 'utf8')));
    }
    const real = createRealSystem();
    const runs: string[] = [];
    const counting: typeof real = {
      ...real,
      run: async (program, args, options) => {
        if (args.includes('--test')) runs.push('test');
        if (args.includes('--daemonize')) runs.push('launch');
        return real.run(program, args, options);
      },
    };
    const started = await runCli(['--conf', scratch.decl, 'start'], {}, counting);
    expect(started.code).toBe(1);
    // No `php-fpm --test` at all; one launch for each instance the preflight let through.
    expect(runs).toEqual(['launch', 'launch', 'launch', 'launch', 'launch', 'launch']);
    for (const [name, { says }] of Object.entries(broken)) {
      const line = started.stderr.split('\n').findIndex((text) => text.includes(`${name}: `));
      expect(line, started.stderr).toBeGreaterThanOrEqual(0);
      expect(started.stderr.split('\n').slice(line).join('\n'), name).toMatch(says);
    }
    expect(started.stderr).toContain('not started: unknown, badvalue, baduser, errlog, include, sockdir (6 of 8)');
    // The other instances started and serve; of the broken ones no process is left.
    for (const name of ['a', 'b']) expect(requestPhp(scratch, name)).toBe(`hello from ${name}`);
    const titles = listFpmProcesses(scratch.dir).map((proc) => proc.title.replace(scratch.dir, 'DIR')).sort();
    expect(titles).toEqual([
      'php-fpm: master process (DIR/a/php-fpm.conf)', 'php-fpm: master process (DIR/b/php-fpm.conf)',
      'php-fpm: pool a', 'php-fpm: pool a', 'php-fpm: pool b', 'php-fpm: pool b',
    ]);
    for (const name of Object.keys(broken)) {
      expect(existsSync(join(scratch.runDir, `${name}.pid`))).toBe(false);
      expect(existsSync(join(scratch.runDir, `${name}.record.json`))).toBe(false);
    }
  });

  test('two start invocations at once: exactly one master per instance', async () => {
    declareInstances(scratch, ['a', 'b', 'c']);
    const [first, second] = await Promise.all([
      new Promise<number | null>((resolve) => spawn(process.execPath, [join('dist', 'cli.js'), '--conf', scratch.decl, 'start'], { stdio: 'ignore' }).on('exit', resolve)),
      new Promise<number | null>((resolve) => spawn(process.execPath, [join('dist', 'cli.js'), '--conf', scratch.decl, 'start'], { stdio: 'ignore' }).on('exit', resolve)),
    ]);
    expect([first, second]).toEqual([0, 0]);
    const masters = listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'));
    expect(masters.map((m) => m.title).sort()).toEqual(['a', 'b', 'c'].map((n) => `php-fpm: master process (${scratch.dir}/${n}/php-fpm.conf)`));
  });

  test('an instance removed from the file after start is shown as orphan and still stopped', async () => {
    declareInstances(scratch, ['a', 'b']);
    expect((await cli('start')).code).toBe(0);
    declareInstances(scratch, ['a']);
    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^b +- +orphan +\d+/m);
    const stopped = runCliProcess(['--conf', scratch.decl, 'stop']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/b: stopped \(pid \d+\)/);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('a config that sets its own pid is a clear problem: php-fpm would ignore --pid', async () => {
    declareInstances(scratch, ['a']);
    appendFileSync(join(scratch.dir, 'a', 'php-fpm.conf'), '');
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    writeFileSync(config, readFileSync(config, 'utf8').replace('[global]', `[global]\npid = ${scratch.dir}/elsewhere.pid`));
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`sets "pid = ${scratch.dir}/elsewhere.pid", which php-fpm uses instead of --pid`);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });
});

test('nice and oom_score_adj reach the master and every worker', async () => {
  declareInstances(scratch, ['a'], 'nice=7 oom_score_adj=250');
  expect((await cli('start')).code).toBe(0);
  const processes = listFpmProcesses(scratch.dir);
  expect(processes).toHaveLength(3);
  for (const { pid } of processes) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    expect(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]).toBe('7'); // field 19: nice
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()).toBe('250');
  }
});

test('as an ordinary user (Gentoo Prefix): the run directory is under $XDG_RUNTIME_DIR', () => {
  const user = 'nobody';
  const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout);
  const runtime = join(scratch.dir, 'xdg');
  mkdirSync(runtime, { mode: 0o700 });
  chownSync(runtime, uid, uid);
  const config = scratch.writeConfig('a').replace(/$/, '');
  // Without root, php-fpm ignores `user`; the socket directory must be the user's.
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^(user|group) = .*$/gm, ''));
  chownSync(join(scratch.dir, 'a'), uid, uid);
  writeFileSync(scratch.decl, `FPM_slot_a="slot=8.2 config=${config}"\n`);
  chownSync(scratch.decl, uid, uid); // the user's own declaration (a root-owned one uses root's run directory)
  const run = (command: string) =>
    spawnSync('runuser', ['-u', user, '--', process.execPath, CLI, '--conf', scratch.decl, command], {
      encoding: 'utf8', env: { PATH: process.env['PATH'], XDG_RUNTIME_DIR: runtime }, timeout: 60_000,
    });
  const started = run('start');
  expect(started.status, started.stderr).toBe(0);
  expect(existsSync(join(runtime, 'php-fpm-multi', 'php-fpm', 'a.pid'))).toBe(true);
  expect(requestPhp(scratch, 'a')).toBe('hello from a');
  const masters = listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'));
  expect(readFileSync(`/proc/${masters[0]!.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
  expect(run('status').status).toBe(0);
  expect(run('stop').status).toBe(0);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('two instances on one listen address: the whole start is refused before any process is touched', async () => {
  const a = scratch.writeConfig('a');
  const b = scratch.writeConfig('b');
  writeFileSync(b, readFileSync(b, 'utf8').replace(/^listen = .*$/m, `listen = ${scratch.socket('a')}`));
  scratch.declare(`FPM_slot_a="slot=8.2 config=${a}"\nFPM_slot_b="slot=8.2 config=${b}"`);
  const started = await cli('start');
  expect(started.code).toBe(6);
  expect(started.stderr).toContain('instances would collide, so none was started');
  expect(started.stderr).toContain(scratch.socket('a'));
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('a launch that fails after the config test shows the lines php-fpm added to its error log', async () => {
  declareInstances(scratch, ['a']);
  const { createServer } = await import('node:net');
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(scratch.socket('a'), resolve));
  try {
    // The squatter is found before the launch (tryout finding 5) unless hidden: php-fpm's own failure is the point here.
    const started = await runCli(['--conf', scratch.decl, 'start'], {}, hideListeningSockets(createRealSystem()));
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/a: start failed: php-fpm exited with status \d+/);
    expect(started.stderr).toMatch(/ERROR: .*(already listen|Address already in use)/);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  } finally {
    squatter.close();
  }
});

test('an instance with problems and no record: stopped when its pidfile is absent, unknown otherwise; never signalled', async () => {
  scratch.declare(`FPM_slot_a="slot=8.2 config=${scratch.dir}/missing.conf"`);
  const { system, sent } = recordSignals();
  const status = await runCli(['--conf', scratch.decl, 'status'], {}, system);
  expect(status.code).toBe(3);
  expect(status.stdout).toContain(`a: unusable: config=${scratch.dir}/missing.conf: no such file`);
  const stop = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(stop.code).toBe(0);
  expect(stop.stdout).toContain('a: not running (and unusable: config=');
  mkdirSync(scratch.runDir, { recursive: true, mode: 0o755 });
  writeFileSync(join(scratch.runDir, 'a.pid'), '4242');
  expect((await runCli(['--conf', scratch.decl, 'status'], {}, system)).code).toBe(4);
  const blind = await runCli(['--conf', scratch.decl, 'stop'], {}, system);
  expect(blind.code).toBe(1);
  expect(blind.stderr).toContain('a: cannot be checked: config=');
  expect(sent).toEqual([]);
});

test('a reader that closes the output early (start | head -c 1) does not abort the start half-way', async () => {
  declareInstances(scratch, ['a', 'b', 'c', 'd', 'e', 'f']);
  const piped = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" --conf "${scratch.decl}" start | head -c 1 >/dev/null; exit "\${PIPESTATUS[0]}"`], {
    encoding: 'utf8', timeout: 60_000,
  });
  expect(piped.status, piped.stderr).toBe(0);
  expect(piped.stderr).not.toContain('EPIPE');
  const status = await cli('--json', 'status');
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout).instances.map((i: { state: string }) => i.state)).toEqual(Array(6).fill('running'));
});
