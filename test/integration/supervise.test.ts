// The supervisor (php-fpm-multi supervise) against the real php8.2-fpm: crashes restarted and
// serving again, the CLI's stop/start/restart/reload respected, SIGHUP, SIGTERM, SIGKILL of the
// supervisor, health restarts; and, with the fake masters (fault injection), a crash loop that
// ends in `failed`. No timing assertions: every wait is for a condition, with a generous deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createRealSystem, type System } from '../../src/process/system.js';
import { runSupervisor, type SignalSource, type SupervisorSignal } from '../../src/supervisor/supervisor.js';
import {
  CGI_FCGI, CLI, declareInstances, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requestPhp, requirePrograms,
  runCliProcess, type FpmScratch,
} from '../helpers/fpm.js';
import { isAlive } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

/** Generous: two CPUs, other engineers' tests, load 10+. */
const DEADLINE_MS = 30_000;

let scratch: FpmScratch;
const supervisors: ChildProcess[] = [];
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(async () => {
  for (const child of supervisors.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  scratch.remove();
});

interface Supervisor {
  child: ChildProcess;
  events(): string;
  /** Waits until the events contain a line matching `pattern` (after `from` characters). */
  waitFor(pattern: RegExp, from?: number): Promise<string>;
  exited: Promise<number | null>;
}

function supervise(...names: string[]): Supervisor {
  const child = spawn(process.execPath, [CLI, '--conf', scratch.decl, 'supervise', ...names], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  supervisors.push(child);
  let events = '';
  child.stdout!.on('data', (chunk: Buffer) => void (events += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => void (events += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    events: () => events,
    waitFor: (pattern, from = 0) => until(`${pattern} in the supervisor's events:\n${events}`, async () => pattern.exec(events.slice(from))?.[0], DEADLINE_MS),
    exited,
  };
}

const cli = (...args: string[]) => runCliProcess(['--conf', scratch.decl, ...args]);

function statusJson(): { instances: Array<{ name: string; state: string; pid: number | null; supervised: { restarts: number; last_reason: string | null } | null }>; supervisor: { pid: number } | null } {
  const result = cli('--json', 'status');
  return JSON.parse(result.stdout) as ReturnType<typeof statusJson>;
}

function pidOf(name: string): number | null {
  try {
    return masterPid(scratch, name);
  } catch {
    return null;
  }
}

/** All named instances run (their pidfiles name live masters). */
async function waitUntilRunning(names: readonly string[]): Promise<Map<string, number>> {
  return until(`${names.join(', ')} running`, async () => {
    const pids = new Map(names.map((name) => [name, pidOf(name)]));
    return [...pids.values()].every((pid) => pid !== null && isAlive(pid)) ? (pids as Map<string, number>) : null;
  }, DEADLINE_MS);
}

describe('with real php-fpm', () => {
  test('kill -9 of one master among three: back and serving, the others keep their pids; status shows it; SIGTERM stops all and exits 0', async () => {
    declareInstances(scratch, ['a', 'b', 'c']);
    const sup = supervise();
    await sup.waitFor(/ c: started: started \(pid \d+\)/);
    const before = await waitUntilRunning(['a', 'b', 'c']);
    for (const name of ['a', 'b', 'c']) expect(requestPhp(scratch, name)).toBe(`hello from ${name}`);

    process.kill(before.get('a')!, 'SIGKILL');
    await sup.waitFor(/ a: restarted: started \(pid \d+\)/);
    const after = await waitUntilRunning(['a', 'b', 'c']);
    expect(after.get('a')).not.toBe(before.get('a'));
    expect(after.get('b')).toBe(before.get('b'));
    expect(after.get('c')).toBe(before.get('c'));
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect(sup.events()).toMatch(new RegExp(`^\\S+Z php-fpm-multi\\[\\d+\\]: a: crashed: its master \\(pid ${before.get('a')}\\) exited \\(found gone at \\S+Z\\)`, 'm'));
    // The dead master's orphaned worker was ended, as start does.
    expect(sup.events()).toMatch(/a: restarted: .*ended \d+ orphaned workers?/);

    const status = statusJson();
    expect(status.supervisor?.pid).toBe(sup.child.pid);
    const a = status.instances.find((i) => i.name === 'a')!;
    expect(a).toMatchObject({ state: 'running', pid: after.get('a') });
    expect(a.supervised?.restarts).toBe(1);
    expect(a.supervised?.last_reason).toMatch(/exited \(found gone at/);
    const text = cli('status');
    expect(text.stdout).toMatch(new RegExp(`supervisor: running \\(pid ${sup.child.pid}, since `));
    expect(text.stdout).toMatch(/a: supervised: 1 restart by the supervisor; last: its master \(pid \d+\) exited/);

    sup.child.kill('SIGTERM');
    expect(await sup.exited).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
    expect(sup.events()).toMatch(/every supervised instance is stopped; exiting/);
    expect(existsSync(join(scratch.runDir, 'supervisor.json'))).toBe(false);
    expect(statusJson().supervisor).toBeNull();
  });

  test('stop NAME is not undone, start NAME brings it back; restart and reload are followed, not crashes', async () => {
    declareInstances(scratch, ['a', 'b']);
    const sup = supervise();
    await sup.waitFor(/ b: started/);
    await waitUntilRunning(['a', 'b']);

    expect(cli('stop', 'b').code).toBe(0);
    await sup.waitFor(/ b: held: stopped by php-fpm-multi stop at \S+: left stopped until php-fpm-multi start b/);
    // The supervisor still acts (a crash of a is restarted) and b stays stopped.
    const mark = sup.events().length;
    process.kill(pidOf('a')!, 'SIGKILL');
    await sup.waitFor(/ a: restarted/, mark);
    expect(pidOf('b')).toBeNull();
    expect(listFpmProcesses(scratch.dir).filter((p) => p.title.includes(join(scratch.dir, 'b')))).toEqual([]);

    const started = cli('start', 'b');
    expect(started.code, started.stderr).toBe(0);
    await sup.waitFor(/ b: resumed: runs again \(pid \d+\)/);
    const resumed = sup.events().length;

    const beforeReload = pidOf('a')!;
    const reloaded = cli('reload', 'a');
    expect(reloaded.code, reloaded.stderr).toBe(0);
    const restarted = cli('restart', 'b');
    expect(restarted.code, restarted.stderr).toBe(0);
    const afterReload = pidOf('a')!;
    // A reload may keep or change the master's pid: followed either way, never counted as a crash.
    if (afterReload !== beforeReload) await sup.waitFor(new RegExp(` a: followed: its master is now pid ${afterReload}`));
    await sup.waitFor(new RegExp(` b: followed: its master is now pid ${pidOf('b')}`));
    expect(sup.events().slice(resumed)).not.toMatch(/(b: crashed|a: crashed)/);
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
    expect(statusJson().instances.find((i) => i.name === 'b')!.supervised?.restarts).toBe(0);
  });

  test('SIGHUP starts added instances, stops removed and disabled ones, reports changed ones; an unusable file keeps the last good one', async () => {
    declareInstances(scratch, ['a', 'b', 'c']);
    const sup = supervise();
    await sup.waitFor(/ c: started/);
    const before = await waitUntilRunning(['a', 'b', 'c']);

    const config = (name: string) => join(scratch.dir, name, 'php-fpm.conf');
    scratch.declare([
      `FPM_slot_a="slot=8.2 config=${config('a')} nice=1"`,
      `FPM_slot_c="slot=8.2 config=${config('c')} enabled=no"`,
      `FPM_slot_d="slot=8.2 config=${scratch.writeConfig('d')}"`,
    ].join('\n'));
    sup.child.kill('SIGHUP');
    await sup.waitFor(/ reread: \S+: added d; removed b, c; changed a/);
    await sup.waitFor(/ d: started/);
    await sup.waitFor(/ b: stopped: removed from/);
    await sup.waitFor(/ c: stopped: removed from/);
    expect(sup.events()).toMatch(/a: needs-restart: nice changed in \S+: run php-fpm-multi restart a to apply it/);
    expect(pidOf('a')).toBe(before.get('a')); // not restarted behind the admin's back
    expect(requestPhp(scratch, 'd'), sup.events()).toBe('hello from d');
    expect(isAlive(before.get('b')!)).toBe(false);
    expect(isAlive(before.get('c')!)).toBe(false);

    const mark = sup.events().length;
    writeFileSync(scratch.decl, 'FPM_slot_a="slot=8.2 config=/nonexistent $(reboot)"\n');
    sup.child.kill('SIGHUP');
    await sup.waitFor(/ reread: \S+ is unusable \(.*\); still supervising the last good declaration/, mark);
    // Still supervising d: a crash is restarted.
    process.kill(pidOf('d')!, 'SIGKILL');
    await sup.waitFor(/ d: restarted/, mark);
    // SIGINT (Ctrl-C in a terminal) stops like SIGTERM.
    sup.child.kill('SIGINT');
    expect(await sup.exited).toBe(0);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('SIGKILL of the supervisor leaves the instances running; a new supervisor adopts them (same pids)', async () => {
    declareInstances(scratch, ['a', 'b']);
    const first = supervise();
    await first.waitFor(/ b: started/);
    const before = await waitUntilRunning(['a', 'b']);
    // One supervisor per declaration file: a second one is refused and touches nothing.
    const refused = cli('supervise');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`a supervisor already runs for ${scratch.decl} (pid ${first.child.pid}, since `);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(before.get('a')!)).toBe(true);
    expect(isAlive(before.get('b')!)).toBe(true);
    expect(statusJson().supervisor).toBeNull(); // its state file names a dead pid

    const second = supervise();
    await second.waitFor(new RegExp(` a: adopted: already running \\(pid ${before.get('a')}\\)`));
    await second.waitFor(new RegExp(` b: adopted: already running \\(pid ${before.get('b')}\\)`));
    expect(pidOf('a')).toBe(before.get('a'));
    expect(pidOf('b')).toBe(before.get('b'));
    expect(second.events()).not.toMatch(/started: started/);
    expect(statusJson().supervisor?.pid).toBe(second.child.pid);
    // And it supervises them: a crash is restarted.
    process.kill(before.get('b')!, 'SIGKILL');
    await second.waitFor(/ b: restarted/);
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
  });

  test('a configuration error (php-fpm exit 78) is failed at once; status shows failed (exit 32) until start', async () => {
    declareInstances(scratch, ['a', 'b']);
    const sup = supervise();
    await sup.waitFor(/ b: started/);
    const before = await waitUntilRunning(['a', 'b']);
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    const good = readFileSync(config, 'utf8');
    appendFileSync(config, 'pm.max_children = not-a-number\n');
    process.kill(before.get('a')!, 'SIGKILL');
    await sup.waitFor(/ a: failed: php-fpm reports a configuration error \(exit status 78\): retrying cannot help; fix it; left stopped until php-fpm-multi start a/);
    expect(sup.events()).not.toMatch(/a: backoff/);
    const status = cli('status');
    expect(status.code).toBe(32);
    expect(status.stdout).toMatch(/^a +8\.2 +failed/m);
    expect(statusJson().instances.find((i) => i.name === 'a')!.state).toBe('failed');

    writeFileSync(config, good);
    expect(cli('start', 'a').code).toBe(0);
    await sup.waitFor(/ a: resumed/);
    expect(cli('status').code).toBe(0);
  });

  test('a pool whose socket was removed gets its instance restarted after health_restart failed pings', async () => {
    scratch.declare(`FPM_slot_a="slot=8.2 config=${scratch.writeConfig('a', 'ping.path = /ping')} health_restart=2 health_interval=1"`);
    const sup = supervise();
    await sup.waitFor(/ a: started: started \(pid \d+\); ready: a answers ping/);
    const before = await waitUntilRunning(['a']);
    rmSync(scratch.socket('a'));
    await sup.waitFor(/ a: health: pool a did not answer its ping \(1 of 2\)/);
    await sup.waitFor(/ a: health-restart: pool a failed 2 pings \(last: .*ENOENT.*\); restarting it/);
    await sup.waitFor(/ a: restarted: started \(pid \d+\); ready: a answers ping/);
    const after = await waitUntilRunning(['a']);
    expect(after.get('a')).not.toBe(before.get('a'));
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
    expect(statusJson().instances[0]!.supervised).toMatchObject({ restarts: 1, last_reason: 'pool a failed 2 pings' });
  });
});

// Fault injection: fake masters (test/fixtures/fake-fpm) under an in-process supervisor, whose
// System maps the fixtures to node (their executable), as control-faults.test.ts does.
describe('with fake masters', () => {
  const FAKES = join(import.meta.dirname, '..', 'fixtures', 'fake-fpm');
  const NODE = realpathSync(process.execPath);

  function systemForFakes(): System {
    const real = createRealSystem();
    return { ...real, realpath: async (path) => (path.startsWith(FAKES) ? NODE : real.realpath(path)) };
  }

  test('a master that dies after every start reaches failed after restart_limit, with the backoff in the events', async () => {
    // Each master exits by itself 1.5 s after it started (its pidfile left behind): a crash loop.
    scratch.declare(
      `FPM_slot_x="binary=${join(FAKES, 'well-behaved.mjs')} config=${scratch.writeConfig('x')} restart_limit=4/120 start_timeout=20 env=FAKE_FPM_LIFETIME_MS=1500"`,
    );
    const emitter = new EventEmitter();
    const signals: SignalSource = {
      on: (signal: SupervisorSignal, listener) => void emitter.on(signal, listener),
      off: (signal: SupervisorSignal, listener) => void emitter.off(signal, listener),
    };
    let events = '';
    const running = runSupervisor({
      io: { stdout: (text) => void (events += text), stderr: (text) => void (events += text), env: { PATH: process.env['PATH'] }, system: systemForFakes() },
      system: systemForFakes(), conf: scratch.decl, selection: [], signals, loggerProgram: null,
    });
    await until(`x failed in:\n${events}`, async () => /x: failed: 4 failures within 120 s \(restart_limit=4\/120\)/.test(events), 90_000);
    const lines = events.split('\n');
    const crashes = lines.filter((line) => / x: crashed: /.test(line));
    expect(crashes).toHaveLength(4);
    expect(crashes[0]).toMatch(/starting it again$/);
    // The backoff grows: 1 s after the second failure in a row, 2 s after the third.
    const backoffs = lines.filter((line) => / x: backoff: /.test(line)).map((line) => /next start in (\S+) s/.exec(line)?.[1]);
    expect(backoffs).toEqual(['1', '2']);
    const times = (pattern: RegExp) => lines.filter((line) => pattern.test(line)).map((line) => Date.parse(line.split(' ')[0]!));
    const [secondStart, thirdStart] = times(/ x: restarted: /).slice(1);
    const [firstBackoff, secondBackoff] = times(/ x: backoff: /);
    // Loosely: each restart came after its backoff began (no timing assertion beyond the order).
    expect(secondStart).toBeGreaterThanOrEqual(firstBackoff!);
    expect(thirdStart).toBeGreaterThanOrEqual(secondBackoff!);
    emitter.emit('SIGTERM');
    expect(await running).toBe(0);
  }, 120_000);
});
