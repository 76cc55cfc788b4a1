// End-to-end tests of the OpenRC runscript (init.d/php-fpm) with the real OpenRC (Debian's
// openrc) and two instances of the real php8.2-fpm. The runscript is installed as a test-only
// service, php-fpm-e2e (and its symlink php-fpm-e2e.web), so nothing collides with a real
// php-fpm service; every php-fpm file lives in one scratch directory. These tests fail (never
// skip) when OpenRC or php-fpm8.2 is missing: scripts/test installs them.

import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupService, controller, controllerStatus, declarationText, ensureSoftlevel, fcgiGet, findProcesses, type FpmInstance, installTestRunscript, isMarkedStarted, makeScratch, rcService, requireTools, run, RUNSCRIPT_TEMPLATE, type Scratch, show, type SystemShell, waitForNoProcesses, withShell, writeFpmInstance,
} from '../helpers/openrc.js';

const SERVICE = 'php-fpm-e2e';
const WEB_SERVICE = `${SERVICE}.web`;
const RUNSCRIPT = `/etc/init.d/${SERVICE}`;
const WEB_RUNSCRIPT = `/etc/init.d/${WEB_SERVICE}`;
const CONF = `/etc/conf.d/${SERVICE}`;
const WEB_CONF = `/etc/conf.d/${WEB_SERVICE}`;

let scratch: Scratch;
let softlevel: { restore(): void } | undefined;
let createdConfDir = false;

async function expectServing(instances: readonly FpmInstance[]): Promise<void> {
  for (const instance of instances) {
    expect(await fcgiGet(instance)).toMatch(new RegExp(`^instance=${instance.name} pid=\\d+`));
  }
}

async function masterPids(conf: string): Promise<Map<string, number | null>> {
  const status = await controllerStatus(conf);
  return new Map([...status].map(([name, entry]) => [name, entry.state === 'running' ? entry.pid : null]));
}

/** The status line of one instance in `php-fpm-multi status`'s table. */
function statusLine(output: string, name: string): string {
  return output.split('\n').find((line) => line.split(/\s+/)[0] === name) ?? `(no line for ${name} in:\n${output})`;
}

beforeAll(() => {
  requireTools();
  softlevel = ensureSoftlevel();
  scratch = makeScratch('openrc');
  for (const file of [RUNSCRIPT, WEB_RUNSCRIPT, CONF, WEB_CONF]) {
    if (existsSync(file)) {
      throw new Error(
        `${file} exists: another run of these tests is going on, or one was killed before its cleanup. In the latter case: ` +
          `php-fpm-multi --conf ${CONF} stop; rc-service ${SERVICE} zap; rm -f ${RUNSCRIPT} ${WEB_RUNSCRIPT} ${CONF} ${WEB_CONF}`,
      );
    }
  }
  ({ createdConfDir } = installTestRunscript(scratch, RUNSCRIPT));
});

afterAll(async () => {
  const notes: string[] = [];
  try {
    if (scratch !== undefined) {
      notes.push(...(await cleanupService(WEB_SERVICE, { runscript: WEB_RUNSCRIPT, conf: WEB_CONF }, scratch)));
      notes.push(...(await cleanupService(SERVICE, { runscript: RUNSCRIPT, conf: CONF }, scratch)));
      scratch.remove();
    }
    if (createdConfDir) await run('rmdir', ['/etc/conf.d']);
  } finally {
    softlevel?.restore();
  }
  if (notes.length > 0) console.warn(`openrc.test.ts cleanup:\n${notes.join('\n')}`);
});

describe('the runscript', () => {
  const source = readFileSync(RUNSCRIPT_TEMPLATE, 'utf8');
  const code = source.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
  // The code without its messages (descriptions, ebegin/eend texts).
  const logic = code.replace(/"(?:[^"\\]|\\.)*"/g, '""');

  it('parses with sh -n', async () => {
    const result = await run('sh', ['-n', RUNSCRIPT_TEMPLATE]);
    expect(result.code, show(result)).toBe(0);
  });

  it('has no bashisms (checkbashisms -f: it skips #!/sbin/openrc-run scripts otherwise)', async () => {
    const result = await run('checkbashisms', ['-f', RUNSCRIPT_TEMPLATE]);
    expect(result.code, show(result)).toBe(0);
    expect(result.output).toBe('');
  });

  it('is an openrc-run script with descriptions, its commands and the guide\'s depend()', () => {
    expect(source.split('\n')[0]).toBe('#!/sbin/openrc-run');
    expect(code).toMatch(/^description="/m);
    expect(code).toMatch(/^extra_commands="checkconfig configtest"$/m);
    expect(code).toMatch(/^extra_started_commands="reload reopen health"$/m);
    for (const command of ['checkconfig', 'configtest', 'reload', 'reopen', 'health']) expect(code).toMatch(new RegExp(`^description_${command}="`, 'm'));
    expect(code).toMatch(/depend\(\) \{\n\tuse net logger\n\}/);
    expect(code).toMatch(/^php_fpm_multi_conf="@SYSCONFDIR@\/conf\.d\/\$\{RC_SVCNAME\}"$/m);
  });

  it('rc-service describe shows the description of the service and of each extra command', async () => {
    const result = await rcService(SERVICE, 'describe', 'dash', scratch);
    expect(result.code, show(result)).toBe(0);
    expect(result.output).toContain(`every instance declared in ${CONF}`);
    for (const command of ['checkconfig', 'configtest', 'reload', 'reopen', 'health']) expect(result.output).toMatch(new RegExp(`\\* ${command}: \\S`));
  });

  it('reload, reopen and health need the service started', async () => {
    for (const command of ['reload', 'reopen', 'health']) {
      const result = await rcService(SERVICE, command, 'dash', scratch);
      expect(result.code, show(result)).toBe(1);
      expect(result.output).toContain(`cannot \`${command}' as it has not been started`);
    }
  });

  it('only calls the controller: no loops, case, parsing or pid handling', () => {
    expect(logic).not.toMatch(/\b(for|while|until|case|eval|kill|pidof|pgrep|sed|awk|grep|cut|read|test)\b/);
    // supervise-daemon is named once: FPM_supervise="yes" hands the service to it (issue 12).
    expect(logic.replace('supervisor=supervise-daemon', '')).not.toMatch(/start-stop-daemon|supervise-daemon|pidfile|\$\(|`/);
    // The conditions are the guide's restart guard and FPM_supervise (issue 12).
    expect(logic.match(/\bif\b/g)).toHaveLength(2);
    expect(code).toContain('if [ "${FPM_supervise}" = yes ]; then');
    expect(code).toContain('if [ "${RC_CMD}" = restart ]; then\n\t\tcheckconfig || return 1\n\tfi');
    // The controller and its declaration file are named once (issue 11); every action goes through that.
    expect(code.split('"${php_fpm_multi}" --conf "${php_fpm_multi_conf}"')).toHaveLength(2);
    expect(code).toContain('php_fpm_multi_run() {\n\t"${php_fpm_multi}" --conf "${php_fpm_multi_conf}" --style openrc "$@"\n}');
    for (const command of ['start --partial', 'stop', 'status', 'reload', 'reopen', 'health', 'configtest', 'check']) {
      expect(code).toContain(`php_fpm_multi_run ${command}`);
    }
  });
});

describe.each<{ form: 'array' | 'string'; shell: SystemShell }>([
  { form: 'array', shell: 'bash' },
  { form: 'string', shell: 'dash' },
])('the $form form with /bin/sh = $shell: the whole life cycle', ({ form, shell }) => {
  let a: FpmInstance;
  let b: FpmInstance;
  let pidsBeforeBrokenRestart: Map<string, number | null>;
  const rc = (command: string) => rcService(SERVICE, command, shell, scratch);

  beforeAll(() => {
    a = writeFpmInstance(scratch, form, 'a');
    b = writeFpmInstance(scratch, form, 'b');
    writeFileSync(CONF, declarationText(form, [a, b], join(scratch.dir, form, 'run')));
  });

  afterAll(async () => {
    await controller(['--conf', CONF, 'stop']);
    if (isMarkedStarted(SERVICE)) await run('rc-service', [SERVICE, 'zap']);
  });

  if (shell === 'bash') {
    it('runs OpenRC with /bin/sh being bash (a symlink to it, as on Gentoo), which reads arrays', async () => {
      const [program, args] = withShell('bash', scratch, 'sh', ['-c', 'readlink -f /bin/sh; a=(x y); echo "${a[1]} $BASH_VERSION"']);
      const result = await run(program, args);
      expect(result.code, show(result)).toBe(0);
      expect(result.stdout).toMatch(/^\/\S*\/bash\ny \d/);
    });
  }

  it('start: exit 0, OpenRC marks the service started, both instances serve', async () => {
    const result = await rc('start');
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(true);
    await expectServing([a, b]);
  });

  it('status: exit 0, both running', async () => {
    const result = await rc('status');
    expect(result.code, show(result)).toBe(0);
    expect(statusLine(result.stdout, 'a')).toMatch(/\brunning\b/);
    expect(statusLine(result.stdout, 'b')).toMatch(/\brunning\b/);
  });

  it('reload: exit 0, php-fpm reloaded (its log says so), both serve', async () => {
    const result = await rc('reload');
    expect(result.code, show(result)).toBe(0);
    for (const instance of [a, b]) expect(readFileSync(instance.errorLog, 'utf8')).toContain('Reloading in progress');
    await expectServing([a, b]);
  });

  it('reopen: exit 0, php-fpm reopened its log', async () => {
    const result = await rc('reopen');
    expect(result.code, show(result)).toBe(0);
    for (const instance of [a, b]) expect(readFileSync(instance.errorLog, 'utf8')).toContain('error log file re-opened');
  });

  it('configtest and checkconfig: exit 0', async () => {
    const configtest = await rc('configtest');
    expect(configtest.code, show(configtest)).toBe(0);
    const checkconfig = await rc('checkconfig');
    expect(checkconfig.code, show(checkconfig)).toBe(0);
  });

  it('restart: exit 0, new masters, both serve', async () => {
    const before = await masterPids(CONF);
    const result = await rc('restart');
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(true);
    const after = await masterPids(CONF);
    for (const name of ['a', 'b']) {
      expect(after.get(name), `pid of ${name}`).toEqual(expect.any(Number));
      expect(after.get(name)).not.toBe(before.get(name));
    }
    await expectServing([a, b]);
    pidsBeforeBrokenRestart = after;
  });

  it('restart with a broken config fails before stopping anything: the instances keep running', async () => {
    const good = readFileSync(b.config, 'utf8');
    writeFileSync(b.config, `${good}pm.max_children = none of this is php-fpm syntax\n`);
    try {
      const result = await rc('restart');
      expect(result.code, show(result)).not.toBe(0);
      expect(result.output).toContain(b.config);
      expect(result.output).toContain(`Fix the problems named above, then run: rc-service ${SERVICE} checkconfig`);
      expect(isMarkedStarted(SERVICE)).toBe(true);
      expect(await masterPids(CONF)).toEqual(pidsBeforeBrokenRestart);
      await expectServing([a, b]);
    } finally {
      writeFileSync(b.config, good);
    }
  });

  it('stop: exit 0, OpenRC marks it stopped, no php-fpm process is left', async () => {
    const result = await rc('stop');
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(false);
    expect(await waitForNoProcesses(scratch.token, 1_000)).toEqual([]);
  });

  it('status after stop: exit 3', async () => {
    const result = await rc('status');
    expect(result.code, show(result)).toBe(3);
  });
});

describe('partial failure: keep what started', () => {
  let good: FpmInstance;
  let bad: FpmInstance;
  let worse: FpmInstance;

  beforeAll(() => {
    good = writeFpmInstance(scratch, 'partial', 'good');
    // A socket directory below a file: start cannot create it, and refuses these two instances.
    writeFileSync(join(scratch.dir, 'partial', 'a-file'), '');
    bad = writeFpmInstance(scratch, 'partial', 'bad', { listenDir: join(scratch.dir, 'partial', 'a-file', 'sockets') });
    worse = writeFpmInstance(scratch, 'partial', 'worse', { listenDir: join(scratch.dir, 'partial', 'a-file', 'sockets') });
  });

  afterAll(async () => {
    await controller(['--conf', CONF, 'stop']);
    if (isMarkedStarted(SERVICE)) await run('rc-service', [SERVICE, 'zap']);
  });

  it('start with one failing instance: exit 0, service started, the failure is named', async () => {
    writeFileSync(CONF, declarationText('string', [good, bad], join(scratch.dir, 'partial', 'run')));
    const result = await rcService(SERVICE, 'start', 'dash', scratch);
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(true);
    expect(result.stderr).toMatch(/\bbad\b/);
    await expectServing([good]);
  });

  it('status reports the failed instance: exit 1 (some running, some not)', async () => {
    const result = await rcService(SERVICE, 'status', 'dash', scratch);
    expect(result.code, show(result)).toBe(1);
    expect(statusLine(result.stdout, 'good')).toMatch(/\brunning\b/);
    expect(statusLine(result.stdout, 'bad')).toMatch(/\b(stopped|crashed)\b/);
  });

  it('stop reaches every running instance', async () => {
    const result = await rcService(SERVICE, 'stop', 'dash', scratch);
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(false);
    expect(await waitForNoProcesses(scratch.token, 1_000)).toEqual([]);
    const status = await rcService(SERVICE, 'status', 'dash', scratch);
    expect(status.code, show(status)).toBe(3);
  });

  it('start with every instance failing: exit 1, service not started, nothing left running', async () => {
    writeFileSync(CONF, declarationText('string', [bad, worse], join(scratch.dir, 'partial', 'run')));
    const result = await rcService(SERVICE, 'start', 'dash', scratch);
    expect(result.code, show(result)).toBe(1);
    expect(result.stderr).toMatch(/\bbad\b/);
    expect(result.stderr).toMatch(/\bworse\b/);
    expect(result.output).toContain(`No instance is running. Fix the problems named above (php-fpm-multi --conf ${CONF} check), then run: rc-service ${SERVICE} start`);
    expect(isMarkedStarted(SERVICE)).toBe(false);
    expect(findProcesses(scratch.token)).toEqual([]);
    const status = await rcService(SERVICE, 'status', 'dash', scratch);
    expect(status.code, show(status)).toBe(3);
  });
});

describe('what the admin sees: the controller speaks OpenRC\'s style (--style openrc)', () => {
  let a: FpmInstance;
  let b: FpmInstance;
  const runDir = () => join(scratch.dir, 'style', 'run');
  const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TERM: 'dumb' };
  /** rc-service with stdout and stderr in one stream, in the order the admin sees them. */
  const seen = (...args: string[]) => run('sh', ['-c', 'exec rc-service "$@" 2>&1', 'sh', ...args], { env: ENV, timeoutMs: 55_000 });
  const ebeginLine = (text: string) => new RegExp(`^ \\* ${text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\.\\.\\.$`);
  /** The lines of the output, without OpenRC's own about its dependency cache (and this machine's missing services). */
  const linesOf = (output: string) => output.split('\n').filter((line) => line !== '' && !line.startsWith(' * Caching service dependencies') && !line.startsWith('Service `'));

  beforeAll(() => {
    a = writeFpmInstance(scratch, 'style', 'a');
    b = writeFpmInstance(scratch, 'style', 'b');
    // b leaves process_control_timeout at 0: check warns about it (a warning, exit 0).
    writeFileSync(b.config, readFileSync(b.config, 'utf8').replace(/^process_control_timeout = .*\n/m, ''));
    writeFileSync(CONF, `${declarationText('string', [a, b], runDir())}FPM_slot_off="slot=8.2 config=${join(scratch.dir, 'style', 'missing.conf')} enabled=no"\n`);
  });

  afterAll(async () => {
    await controller(['--conf', CONF, 'stop']);
    if (isMarkedStarted(SERVICE)) await run('rc-service', [SERVICE, 'zap']);
  });

  it('start: each instance on a line of its own after the ebegin line, " * " lines, [ ok ] at the end', async () => {
    const result = await seen(SERVICE, 'start');
    expect(result.code, show(result)).toBe(0);
    const lines = linesOf(result.output);
    expect(lines[0], result.output).toMatch(ebeginLine(`Starting the PHP-FPM instances of ${CONF}`));
    expect(lines.slice(1).sort().map((line) => line.replace(/ \[ ok \]$/, '').replace(/\d+/g, 'N'))).toEqual([' * a: started (pid N)', ' * b: started (pid N)']);
    expect(lines[2]).toMatch(/ \[ ok \]$/);
    expect(result.output).not.toContain('php-fpm-multi:');
  });

  it('status: the table, the disabled instance listed and marked; exit 0 (it does not count)', async () => {
    const result = await rcService(SERVICE, 'status', 'dash', scratch);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toMatch(/^INSTANCE +SLOT +STATE/);
    expect(statusLine(result.stdout, 'a')).toMatch(/\brunning\b/);
    expect(statusLine(result.stdout, 'off')).toMatch(/^off +\S+ +disabled\b/);
  });

  it('health when healthy: the ebegin line and [ ok ], nothing else', async () => {
    const result = await seen(SERVICE, 'health');
    expect(result.code, show(result)).toBe(0);
    expect(linesOf(result.output)).toEqual([` * Checking the health of the PHP-FPM instances of ${CONF} ... [ ok ]`]);
  });

  it('a warning (checkconfig): an ewarn line on stderr, not glued to the ebegin line; exit 0', async () => {
    const result = await seen(SERVICE, 'checkconfig');
    expect(result.code, show(result)).toBe(0);
    const lines = linesOf(result.output);
    expect(lines[0]).toMatch(ebeginLine(`Checking ${CONF} and the php-fpm configuration of its instances`));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ \\* ${CONF}: warning: FPM_slot_b \\(line \\d+\\): .*process_control_timeout`)));
    const streams = await rcService(SERVICE, 'checkconfig', 'dash', scratch);
    expect(streams.stderr).toMatch(/^ \* \S+: warning: FPM_slot_b/m);
  });

  it('rc-service -q reload: nothing printed when all goes well', async () => {
    const result = await run('rc-service', ['-q', SERVICE, 'reload'], { env: ENV, timeoutMs: 55_000 });
    expect(result.code, show(result)).toBe(0);
    expect(result.output).toBe('');
  });

  it('a failure (health with b stopped): an eerror line naming b, the runscript\'s advice, [ !! ]; exit 1', async () => {
    const stopped = await controller(['--conf', CONF, 'stop', 'b']);
    expect(stopped.code, show(stopped)).toBe(0);
    const result = await seen(SERVICE, 'health');
    expect(result.code, show(result)).toBe(1);
    const lines = linesOf(result.output);
    expect(lines[0]).toMatch(ebeginLine(`Checking the health of the PHP-FPM instances of ${CONF}`));
    expect(lines[1]).toMatch(/^ \* b: not running \(stopped\)/);
    expect(lines[2]).toBe(` * Some instances are not healthy (named above); see rc-service ${SERVICE} status`);
    expect(lines[3]).toMatch(/^ +\[ !! \]$/);
    const streams = await rcService(SERVICE, 'health', 'dash', scratch);
    expect(streams.stderr).toMatch(/^ \* b: not running/m);
    expect(streams.stdout).not.toMatch(/b: not running/);
  });

  it('on a colour terminal: the stars in libeinfo\'s colours (red for b\'s failure)', async () => {
    const result = await run('script', ['-qec', `rc-service ${SERVICE} health`, '/dev/null'], { env: { ...ENV, TERM: 'xterm' }, timeoutMs: 55_000 });
    expect(result.code, show(result)).toBe(1);
    expect(result.stdout).toContain(' \u001b[1m\u001b[31m*\u001b[m b: not running (stopped)');
  });

  it('stop: every instance on its own line, [ ok ] at the end', async () => {
    const result = await seen(SERVICE, 'stop');
    expect(result.code, show(result)).toBe(0);
    const lines = linesOf(result.output);
    expect(lines[0]).toMatch(ebeginLine(`Stopping the PHP-FPM instances of ${CONF}`));
    expect(lines.slice(1).every((line) => line.startsWith(' * '))).toBe(true);
    expect(lines.at(-1)).toMatch(/ \[ ok \]$/);
    expect(lines.join('\n')).toMatch(/^ \* a: stopped \(pid \d+\)/m);
  });
});

describe('the array form under dash', () => {
  let a: FpmInstance;
  let b: FpmInstance;

  beforeAll(() => {
    a = writeFpmInstance(scratch, 'dash-array', 'a');
    b = writeFpmInstance(scratch, 'dash-array', 'b');
    writeFileSync(CONF, declarationText('array', [a, b], join(scratch.dir, 'dash-array', 'run')));
  });

  afterAll(async () => {
    await controller(['--conf', CONF, 'stop']);
    if (isMarkedStarted(SERVICE)) await run('rc-service', [SERVICE, 'zap']);
  });

  it('start fails where OpenRC sources the file with dash, and starts nothing', async () => {
    const result = await rcService(SERVICE, 'start', 'dash', scratch);
    expect(result.code, show(result)).not.toBe(0);
    expect(result.output).toContain('"(" unexpected');
    expect(isMarkedStarted(SERVICE)).toBe(false);
    expect(findProcesses(scratch.token)).toEqual([]);
  });

  it('php-fpm-multi check says why and prints the string form to use', async () => {
    const result = await controller(['--conf', CONF, 'check']);
    expect(result.stderr).toContain('uses bash arrays');
    expect(result.stderr).toMatch(/\/bin\/sh is \S*dash/);
    expect(result.stderr).toContain('"(" unexpected');
    const rewritten = result.stderr.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('FPM_slot_'));
    expect(rewritten).toEqual([
      `FPM_slot_a="slot=php8.2 config=${a.config}"`,
      `FPM_slot_b="slot=php8.2 config=${b.config}"`,
    ]);
  });

  it('the rewritten string form check printed starts under dash', async () => {
    const checked = await controller(['--conf', CONF, 'check']);
    const rewritten = checked.stderr.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('FPM_slot_'));
    writeFileSync(CONF, `${rewritten.join('\n')}\nFPM_run_dir="${join(scratch.dir, 'dash-array', 'run')}"\n`);
    const recheck = await controller(['--conf', CONF, 'check']);
    expect(recheck.code, show(recheck)).toBe(0);
    expect(recheck.stderr).toBe('');
    const start = await rcService(SERVICE, 'start', 'dash', scratch);
    expect(start.code, show(start)).toBe(0);
    await expectServing([a, b]);
    const stop = await rcService(SERVICE, 'stop', 'dash', scratch);
    expect(stop.code, show(stop)).toBe(0);
    expect(await waitForNoProcesses(scratch.token, 1_000)).toEqual([]);
  });
});

describe('a second service: the symlink php-fpm-e2e.web -> php-fpm-e2e with its own conf.d file', () => {
  let main: FpmInstance;
  let web: FpmInstance;

  beforeAll(() => {
    main = writeFpmInstance(scratch, 'symlink', 'main');
    web = writeFpmInstance(scratch, 'symlink', 'web');
    writeFileSync(CONF, declarationText('string', [main], join(scratch.dir, 'symlink', 'run-main')));
    writeFileSync(WEB_CONF, declarationText('string', [web], join(scratch.dir, 'symlink', 'run-web')));
    symlinkSync(SERVICE, WEB_RUNSCRIPT);
  });

  afterAll(async () => {
    await controller(['--conf', WEB_CONF, 'stop']);
    await controller(['--conf', CONF, 'stop']);
    for (const service of [WEB_SERVICE, SERVICE]) if (isMarkedStarted(service)) await run('rc-service', [service, 'zap']);
  });

  it('starts only the instances of its own file', async () => {
    const result = await rcService(WEB_SERVICE, 'start', 'dash', scratch);
    expect(result.code, show(result)).toBe(0);
    expect(result.output).toContain(WEB_CONF);
    expect(isMarkedStarted(WEB_SERVICE)).toBe(true);
    expect(isMarkedStarted(SERVICE)).toBe(false);
    await expectServing([web]);
    const webStatus = await rcService(WEB_SERVICE, 'status', 'dash', scratch);
    expect(webStatus.code, show(webStatus)).toBe(0);
    const mainStatus = await rcService(SERVICE, 'status', 'dash', scratch);
    expect(mainStatus.code, show(mainStatus)).toBe(3);
  });

  it('both services run side by side and stop independently', async () => {
    const start = await rcService(SERVICE, 'start', 'dash', scratch);
    expect(start.code, show(start)).toBe(0);
    await expectServing([main, web]);
    const stopWeb = await rcService(WEB_SERVICE, 'stop', 'dash', scratch);
    expect(stopWeb.code, show(stopWeb)).toBe(0);
    await expectServing([main]);
    expect(await waitForNoProcesses([web.pool, web.dir], 1_000)).toEqual([]);
    const stopMain = await rcService(SERVICE, 'stop', 'dash', scratch);
    expect(stopMain.code, show(stopMain)).toBe(0);
    expect(await waitForNoProcesses(scratch.token, 1_000)).toEqual([]);
  });
});
