// The README's "Migrating from per-version init scripts" for Debian, followed for real on this
// machine: Debian's own php8.2-fpm service (its sysvinit script /etc/init.d/php8.2-fpm, stock
// config /etc/php/8.2/fpm/php-fpm.conf, pool www on /run/php/php8.2-fpm.sock) runs first; then
// discover > /etc/conf.d/php-fpm, the fix lines, check, Debian's service stopped and disabled,
// ours started, a FastCGI request served by the www pool, ours stopped. Everything is restored
// afterwards: the config files byte-identical, update-rc.d's links and OpenRC's runlevel entry,
// /etc/conf.d/php-fpm, Debian's service stopped.
//
// Debian's `stop` ends every process whose executable is /usr/sbin/php-fpm8.2
// (start-stop-daemon --exec), not only its own master: on this shared machine that would end the
// php-fpm of other tests. So Debian's service runs in a PID namespace of its own (a reaping loop
// as its init, /proc remounted): its start and stop see only their own processes, while the
// controller, outside, sees Debian's master as any process of the machine. Ending that init
// ends everything in the namespace, whatever happened.
//
// Touches /etc/php, /etc/conf.d, /etc/rc?.d, /etc/runlevels and the service name php-fpm's run
// directory: run it under the global lock only (flock /work/wt/global.lock npx vitest run FILE).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readDeclaration } from '../../src/declaration/reader.js';
import { FIX_PREFIX } from '../../src/model/discovery.js';
import { controller, findProcesses, makeScratch, requireTools, run, type Scratch, show } from '../helpers/openrc.js';
import { until } from '../helpers/wait.js';

const SERVICE = 'php8.2-fpm';
const FPM_CONF = '/etc/php/8.2/fpm/php-fpm.conf';
const POOL_CONF = '/etc/php/8.2/fpm/pool.d/www.conf';
const SOCKET = '/run/php/php8.2-fpm.sock';
const DEBIAN_PIDFILE = '/run/php/php8.2-fpm.pid';
const CONF_DIR = '/etc/conf.d';
const CONF = '/etc/conf.d/php-fpm';
const RUN_DIR = '/run/php-fpm-multi/php-fpm';
const RC_DIRS = ['/etc/rc0.d', '/etc/rc1.d', '/etc/rc2.d', '/etc/rc3.d', '/etc/rc4.d', '/etc/rc5.d', '/etc/rc6.d', '/etc/rcS.d'];
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
/** Debian's stop waits up to 30 s for its master, then TERM and KILL: a generous bound. */
const SERVICE_TIMEOUT_MS = 90_000;

/** update-rc.d's state of the service: its links in /etc/rc?.d and OpenRC's runlevels. */
function snapshotLinks(): Map<string, string> {
  const links = new Map<string, string>();
  const dirs = [...RC_DIRS, ...(existsSync('/etc/runlevels') ? readdirSync('/etc/runlevels').map((level) => join('/etc/runlevels', level)) : [])];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (name.replace(/^[SK]\d\d/, '') === SERVICE) links.set(join(dir, name), readlinkSync(join(dir, name)));
  }
  return links;
}

function restoreLinks(wanted: ReadonlyMap<string, string>): void {
  for (const link of snapshotLinks().keys()) if (!wanted.has(link)) unlinkSync(link);
  for (const [link, target] of wanted) {
    if (existsSync(link) || isSymlink(link)) unlinkSync(link);
    symlinkSync(target, link);
  }
}

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A PID namespace for Debian's service: its init is a reaping loop (perl) this test started and ends. */
interface Namespace {
  unshare: ChildProcess;
  initPid: number;
}

async function openNamespace(): Promise<Namespace> {
  // The init reaps every orphan (a daemon's exited master): start-stop-daemon waits for a zombie as for a live process.
  const init = 'while (1) { sleep 1 if wait() == -1 }';
  const unshare = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'perl', '-e', init], { stdio: 'ignore' });
  const parent = unshare.pid;
  if (parent === undefined) throw new Error('unshare did not start');
  const initPid = await until('the namespace init under unshare', async () => {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    return null;
  }, 30_000);
  return { unshare, initPid };
}

/** Runs a command inside the namespace (its processes and /proc), on the machine's files. */
function inNamespace(ns: Namespace, program: string, args: readonly string[]): ReturnType<typeof run> {
  return run('nsenter', ['--target', String(ns.initPid), '--pid', '--mount', '--', program, ...args], { env: ENV, timeoutMs: SERVICE_TIMEOUT_MS });
}

/** A FastCGI request for the test script to the www pool; the body, or throws with cgi-fcgi's output. */
async function requestWww(script: string): Promise<string> {
  const result = await run('cgi-fcgi', ['-bind', '-connect', SOCKET], {
    env: { PATH: '/usr/bin:/bin', SCRIPT_FILENAME: script, SCRIPT_NAME: '/index.php', REQUEST_METHOD: 'GET', QUERY_STRING: '', SERVER_PROTOCOL: 'HTTP/1.1' },
    timeoutMs: 30_000,
  });
  if (result.code !== 0) throw new Error(`no answer on ${SOCKET}: ${show(result)}`);
  return result.stdout.replace(/^[\s\S]*?\r?\n\r?\n/, '');
}

/** The masters of Debian's config, whoever started them (its cmdline names the config). */
function mastersOfConfig(): number[] {
  return findProcesses(`master process (${FPM_CONF})`).map(({ pid }) => pid);
}

const saved = { fpmConf: Buffer.alloc(0), poolConf: Buffer.alloc(0), conf: null as Buffer | null, links: new Map<string, string>() };
let createdConfDir = false;
let createdRunDir = false;
let scratch: Scratch;
let ns: Namespace | undefined;
let script = '';

beforeAll(async () => {
  requireTools(['nsenter', 'update-rc.d', 'service']);
  if (!existsSync(`/etc/init.d/${SERVICE}`) || !existsSync(FPM_CONF)) throw new Error(`Debian's ${SERVICE} (package php8.2-fpm) is not installed: scripts/setup installs it`);
  if (mastersOfConfig().length > 0) throw new Error(`a master of ${FPM_CONF} already runs (${mastersOfConfig().join(', ')}): stop it first; this test starts Debian's service itself`);
  saved.fpmConf = readFileSync(FPM_CONF);
  saved.poolConf = readFileSync(POOL_CONF);
  saved.conf = existsSync(CONF) ? readFileSync(CONF) : null;
  saved.links = snapshotLinks();
  createdConfDir = !existsSync(CONF_DIR);
  createdRunDir = !existsSync(RUN_DIR);
  scratch = makeScratch('discover');
  script = join(scratch.dir, 'index.php');
  writeFileSync(script, '<?php echo "served by pid ", getmypid(), "\\n";\n', { mode: 0o644 });
  ns = await openNamespace();
}, 120_000);

afterAll(async () => {
  const failures: string[] = [];
  const attempt = async (what: string, step: () => unknown): Promise<void> => {
    try {
      await step();
    } catch (error) {
      failures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // Ours first (through its records), while the declaration is still the one that started it.
  if (existsSync(CONF)) await attempt('php-fpm-multi stop', async () => controller(['stop'], ENV));
  if (ns !== undefined) {
    const namespace = ns;
    await attempt(`service ${SERVICE} stop (in the namespace)`, () => inNamespace(namespace, 'service', [SERVICE, 'stop']));
    await attempt('ending the namespace', async () => {
      process.kill(namespace.initPid, 'SIGKILL'); // the namespace's init, ours: every process in it ends with it
      await until('the namespace to end', async () => namespace.unshare.exitCode !== null || namespace.unshare.signalCode !== null, 30_000);
    });
  }
  await attempt(`restoring ${FPM_CONF}`, () => writeFileSync(FPM_CONF, saved.fpmConf));
  await attempt(`restoring ${POOL_CONF}`, () => writeFileSync(POOL_CONF, saved.poolConf));
  await attempt(`restoring ${CONF}`, () => (saved.conf === null ? rmSync(CONF, { force: true }) : writeFileSync(CONF, saved.conf)));
  if (createdConfDir && existsSync(CONF_DIR)) await attempt(`removing ${CONF_DIR}`, () => rmdirSync(CONF_DIR));
  if (createdRunDir) await attempt(`removing ${RUN_DIR}`, () => rmSync(RUN_DIR, { recursive: true, force: true }));
  await attempt(`update-rc.d ${SERVICE} enable`, async () => run('update-rc.d', [SERVICE, 'enable'], { env: ENV }));
  await attempt('restoring the links of update-rc.d', () => restoreLinks(saved.links));
  scratch?.remove();
  // What must hold whatever happened: every file as it was, nothing of the config left running.
  expect(readFileSync(FPM_CONF).equals(saved.fpmConf)).toBe(true);
  expect(readFileSync(POOL_CONF).equals(saved.poolConf)).toBe(true);
  expect(snapshotLinks()).toEqual(saved.links);
  expect(mastersOfConfig()).toEqual([]);
  expect(failures).toEqual([]);
}, 300_000);

describe("migrating Debian's php8.2-fpm service (README: Migrating from per-version init scripts)", () => {
  test('discover, fix, check, stop and disable Debian\'s, start ours: the www pool serves; then ours stops', async () => {
    const namespace = ns!;
    // Debian's own service runs, as on a machine before the migration.
    const debianStart = await inNamespace(namespace, '/etc/init.d/php8.2-fpm', ['start']);
    expect(debianStart.code, show(debianStart)).toBe(0);
    const debianMaster = await until("Debian's master", async () => mastersOfConfig()[0], 60_000);
    expect(await until('the www pool to answer', () => requestWww(script).catch(() => null), 60_000)).toMatch(/^served by pid \d+\n$/);

    // 1. php-fpm-multi discover > /etc/conf.d/php-fpm
    const discovered = await controller(['discover'], ENV);
    expect(discovered.code, show(discovered)).toBe(0);
    expect(discovered.stdout).toContain('# php8.2 (Debian/Ubuntu): /usr/sbin/php-fpm8.2\n#   version: PHP 8.2.');
    expect(discovered.stdout).toContain(`#   pool www: listen ${SOCKET} (${POOL_CONF}:`);
    expect(discovered.stdout).toContain(`sets "pid = ${DEBIAN_PIDFILE}"`);
    expect(discovered.stdout).toContain(`\nFPM_slot_php82="slot=php8.2 config=${FPM_CONF}"\n`);
    mkdirSync(CONF_DIR, { recursive: true });
    writeFileSync(CONF, discovered.stdout);

    // The output is what every reader makes of it: ours, dash (/bin/sh here) and bash.
    const ours = readDeclaration(discovered.stdout, { file: CONF, env: {} }).variables.map((v) => `${v.name}=${v.value.kind === 'string' ? v.value.value : '(array)'}`);
    expect(ours).toEqual([`FPM_slot_php82=slot=php8.2 config=${FPM_CONF}`]);
    for (const shell of ['/bin/sh', '/bin/bash']) {
      const sourced = await run(shell, ['-c', '. "$1" && printf "FPM_slot_php82=%s\\n" "$FPM_slot_php82"', 'sh', CONF], { env: ENV });
      expect(sourced.stdout, `${shell}: ${show(sourced)}`).toBe(`${ours.join('\n')}\n`);
    }

    // The array form (--form array) is what bash makes of it too: the same words, element by element.
    const arrays = await controller(['discover', '--form', 'array'], ENV);
    expect(arrays.code, show(arrays)).toBe(0);
    const [arrayVariable] = readDeclaration(arrays.stdout, { file: 'array form', env: {} }).variables;
    expect(arrayVariable?.value).toEqual({ kind: 'array', elements: ['slot=php8.2', `config=${FPM_CONF}`] });
    const arrayFile = join(scratch.dir, 'array-form');
    writeFileSync(arrayFile, arrays.stdout);
    const bashArray = await run('/bin/bash', ['-c', '. "$1" && printf "<%s>\\n" "${FPM_slot_php82[@]}"', 'bash', arrayFile], { env: ENV });
    expect(bashArray.stdout, show(bashArray)).toBe(`<slot=php8.2>\n<config=${FPM_CONF}>\n`);

    // 2. The fixes, as the README runs them: every "fix:" line of the file.
    const fixes = discovered.stdout.split('\n').filter((line) => line.startsWith(FIX_PREFIX));
    expect(fixes).toEqual([expect.stringMatching(/^#   fix: sed -i '\d+s\/\^\[\[:space:\]\]\*pid\[\[:space:\]\]\*=\/;&\/' \/etc\/php\/8\.2\/fpm\/php-fpm\.conf$/)]);
    const fixed = await run('sh', ['-c', `sed -n 's/^${FIX_PREFIX}//p' ${CONF} | sh -ex`], { env: ENV });
    expect(fixed.code, show(fixed)).toBe(0);
    // Exactly the pid line is commented out; nothing else of the file changed.
    const before = saved.fpmConf.toString('utf8').split('\n');
    const after = readFileSync(FPM_CONF, 'utf8').split('\n');
    expect(after.filter((line, i) => line !== before[i])).toEqual([`;pid = ${DEBIAN_PIDFILE}`]);

    // 3. check, while Debian's service still runs: it names Debian's master and nothing else.
    const early = await controller(['check'], ENV);
    expect(early.code, show(early)).toBe(6);
    const problems = early.stderr.split('\n').filter((line) => line.startsWith(`${CONF}: FPM_slot_php82`));
    expect(problems.length, show(early)).toBeGreaterThan(0);
    for (const problem of problems) expect(problem, show(early)).toContain(String(debianMaster));

    // 4. Debian's service stopped and disabled (its stop ends every php-fpm8.2 it sees: before ours starts).
    const stopped = await inNamespace(namespace, 'service', [SERVICE, 'stop']);
    expect(stopped.code, show(stopped)).toBe(0);
    await until("Debian's master to exit", async () => mastersOfConfig().length === 0, 60_000);
    const disabled = await run('update-rc.d', [SERVICE, 'disable'], { env: ENV });
    expect(disabled.code, show(disabled)).toBe(0);
    expect([...snapshotLinks().keys()].filter((link) => /\/S\d\d/.test(link) || link.startsWith('/etc/runlevels/'))).toEqual([]);

    // 5. check is clean now.
    const checked = await controller(['check'], ENV);
    expect(checked.code, show(checked)).toBe(0);

    // 6. Ours starts (as rc-service php-fpm start would run it) and the www pool serves.
    const started = await controller(['start'], ENV);
    expect(started.code, show(started)).toBe(0);
    const [ourMaster] = mastersOfConfig();
    expect(ourMaster).toBeDefined();
    expect(ourMaster).not.toBe(debianMaster);
    expect(await requestWww(script)).toMatch(/^served by pid \d+\n$/);
    expect(existsSync(DEBIAN_PIDFILE)).toBe(false); // php-fpm wrote the pidfile it was given, in our run directory
    expect(readFileSync(join(RUN_DIR, 'php82.pid'), 'utf8').trim()).toBe(String(ourMaster));
    const status = await controller(['status'], ENV);
    expect(status.code, show(status)).toBe(0);

    // Ours stops; the teardown restores the rest.
    const stoppedOurs = await controller(['stop'], ENV);
    expect(stoppedOurs.code, show(stoppedOurs)).toBe(0);
    expect(mastersOfConfig()).toEqual([]);
  }, 600_000);
});
