// End-to-end: FPM_supervise="yes" with the real OpenRC and its supervise-daemon, /bin/sh = dash
// and the string form. `rc-service start` runs `php-fpm-multi supervise` under supervise-daemon;
// a SIGKILLed master is restarted by the supervisor; a SIGKILLed supervisor is respawned by
// supervise-daemon and adopts the running instances (same pids); `stop` ends it and every
// instance. The service is test-only (php-fpm-sv-e2e); its php-fpm files live in a scratch dir.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupService, controllerStatus, declarationText, ensureSoftlevel, fcgiGet, findProcesses, type FpmInstance, installTestRunscript, isMarkedStarted, makeScratch, rcService, requireTools, run, type Scratch, show, waitForNoProcesses, writeFpmInstance,
} from '../helpers/openrc.js';
import { isAlive } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

const SERVICE = 'php-fpm-sv-e2e';
const RUNSCRIPT = `/etc/init.d/${SERVICE}`;
const CONF = `/etc/conf.d/${SERVICE}`;
/** Generous: two CPUs, other tests running. */
const DEADLINE_MS = 30_000;

let scratch: Scratch;
let softlevel: { restore(): void } | undefined;
let createdConfDir = false;
let a: FpmInstance;
let b: FpmInstance;
let runDir: string;

const rc = (command: string) => rcService(SERVICE, command, 'dash', scratch);

/** The supervisor's pid from its state file, when that pid runs. */
function supervisorPid(): number | null {
  try {
    const { pid } = JSON.parse(readFileSync(join(runDir, 'supervisor.json'), 'utf8')) as { pid: number };
    return isAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

async function runningPids(): Promise<Map<string, number> | null> {
  const status = await controllerStatus(CONF);
  const pids = new Map<string, number>();
  for (const name of ['a', 'b']) {
    const entry = status.get(name);
    if (entry?.state !== 'running' || entry.pid === null) return null;
    pids.set(name, entry.pid);
  }
  return pids;
}

beforeAll(() => {
  requireTools(['supervise-daemon']);
  softlevel = ensureSoftlevel();
  scratch = makeScratch('svopenrc');
  for (const file of [RUNSCRIPT, CONF]) {
    if (existsSync(file)) {
      throw new Error(`${file} exists: another run is going on, or one was killed before its cleanup: rc-service ${SERVICE} zap; rm -f ${RUNSCRIPT} ${CONF}`);
    }
  }
  ({ createdConfDir } = installTestRunscript(scratch, RUNSCRIPT));
  a = writeFpmInstance(scratch, 'string', 'a');
  b = writeFpmInstance(scratch, 'string', 'b');
  runDir = join(scratch.dir, 'string', 'run');
  writeFileSync(CONF, `${declarationText('string', [a, b], runDir)}FPM_supervise="yes"\n`);
});

afterAll(async () => {
  const notes: string[] = [];
  try {
    if (scratch !== undefined) {
      if (isMarkedStarted(SERVICE)) await rc('stop').catch(() => undefined);
      notes.push(...(await cleanupService(SERVICE, { runscript: RUNSCRIPT, conf: CONF }, scratch)));
      scratch.remove();
    }
    if (createdConfDir) await run('rmdir', ['/etc/conf.d']);
  } finally {
    softlevel?.restore();
  }
  if (notes.length > 0) console.warn(`supervise-openrc.test.ts cleanup:\n${notes.join('\n')}`);
});

describe('FPM_supervise="yes" under OpenRC (dash, string form)', () => {
  let pids: Map<string, number>;
  let firstSupervisor: number;

  it('start runs php-fpm-multi supervise under supervise-daemon; both instances serve', async () => {
    const result = await rc('start');
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(true);
    pids = await until('both instances running', runningPids, DEADLINE_MS);
    firstSupervisor = await until('the supervisor running', async () => supervisorPid(), DEADLINE_MS);
    const cmdline = readFileSync(`/proc/${firstSupervisor}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain('supervise');
    // Its parent is OpenRC's supervise-daemon.
    const stat = readFileSync(`/proc/${firstSupervisor}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    expect(readFileSync(`/proc/${ppid}/cmdline`, 'utf8')).toContain('supervise-daemon');
    for (const instance of [a, b]) expect(await fcgiGet(instance)).toMatch(new RegExp(`^instance=${instance.name} pid=\\d+`));
  });

  it('status reports supervise-daemon and the instances with their supervisor', async () => {
    const result = await rc('status');
    expect(result.code, show(result)).toBe(0);
    expect(result.output).toContain('status: started');
    expect(result.stdout).toMatch(/^a +8\.2 +running/m);
    expect(result.stdout).toMatch(new RegExp(`supervisor: running \\(pid ${firstSupervisor}, since `));
  });

  it('a SIGKILLed master is restarted by the supervisor and serves again; the other keeps its pid', async () => {
    process.kill(pids.get('a')!, 'SIGKILL');
    const after = await until('a restarted', async () => {
      const now = await runningPids();
      return now !== null && now.get('a') !== pids.get('a') ? now : null;
    }, DEADLINE_MS);
    expect(after.get('b')).toBe(pids.get('b'));
    expect(await fcgiGet(a)).toMatch(/^instance=a pid=\d+/);
    pids = after;
  });

  it('a SIGKILLed supervisor is respawned by supervise-daemon and adopts the instances (same pids)', async () => {
    process.kill(firstSupervisor, 'SIGKILL');
    const second = await until('a new supervisor', async () => {
      const pid = supervisorPid();
      return pid !== null && pid !== firstSupervisor ? pid : null;
    }, DEADLINE_MS);
    expect(second).not.toBe(firstSupervisor);
    expect(await runningPids()).toEqual(pids);
    expect(isAlive(pids.get('a')!)).toBe(true);
    expect(isAlive(pids.get('b')!)).toBe(true);
    const status = await rc('status');
    expect(status.code, show(status)).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`supervisor: running \\(pid ${second}, since `));
  });

  it('stop ends the supervisor and every instance; the service is stopped', async () => {
    const result = await rc('stop');
    expect(result.code, show(result)).toBe(0);
    expect(isMarkedStarted(SERVICE)).toBe(false);
    expect(await waitForNoProcesses(scratch.token, DEADLINE_MS)).toEqual([]);
    expect(findProcesses(scratch.token)).toEqual([]);
    expect(supervisorPid()).toBeNull();
    const status = await rc('status');
    expect(status.code, show(status)).toBe(3);
  });
});
