// Fault injection: fake php-fpm masters that misbehave on purpose (test/fixtures/fake-fpm/).
// They run under node, so to the kernel their executable is node, not the script: the system
// given to the controller maps the fixtures' real path to node's, and nothing else changes.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createRealSystem, type System } from '../../src/process/system.js';
import { runCli } from '../helpers/cli.js';
import { listProcessesUnder, makeFpmScratch, type FpmScratch } from '../helpers/fpm.js';

const FAKES = join(import.meta.dirname, '..', 'fixtures', 'fake-fpm');
const NODE = realpathSync(process.execPath);

function systemForFakes(): System {
  const real = createRealSystem();
  return { ...real, realpath: async (path) => (path.startsWith(FAKES) ? NODE : real.realpath(path)) };
}

let scratch: FpmScratch;
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(() => scratch.remove());

function declareFake(fake: string, keys: string): void {
  scratch.declare(`FPM_slot_x="binary=${join(FAKES, fake)} config=${scratch.writeConfig('x')} ${keys}"`);
}
const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args], {}, systemForFakes());
const fakeMasters = () => listProcessesUnder(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'));

test('a master that ignores SIGQUIT is stopped with SIGTERM after stop_timeout', async () => {
  declareFake('ignores-quit.mjs', 'stop_timeout=0.3');
  expect((await cli('start')).code).toBe(0);
  expect(fakeMasters()).toHaveLength(1);
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toMatch(/x: stopped \(pid \d+\) after SIGTERM: it ignored SIGQUIT for 0.3 s/);
  expect(listProcessesUnder(scratch.dir)).toEqual([]);
});

test('a master that ignores SIGQUIT and SIGTERM is killed after both timeouts', async () => {
  declareFake('ignores-quit-term.mjs', 'stop_timeout=0.3');
  expect((await cli('start')).code).toBe(0);
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toMatch(/x: stopped \(pid \d+\) after SIGKILL: it ignored SIGQUIT and SIGTERM/);
  expect(listProcessesUnder(scratch.dir)).toEqual([]);
});

test('a master that dies on reload is a failed reload, and status then says crashed', async () => {
  // Generous: the fake must start within start_timeout on a loaded machine; a death is reported at once.
  declareFake('dies-on-reload.mjs', 'start_timeout=10');
  expect((await cli('start')).code).toBe(0);
  const reloaded = await cli('reload');
  expect(reloaded.code).toBe(1);
  expect(reloaded.stderr).toMatch(/x: reload failed: its master \(pid \d+\) died during the reload: the instance is down\n/);
  expect((await cli('status')).code).toBe(32);
});

test('a launcher that never writes its pidfile fails start after start_timeout, leaving no master behind', async () => {
  // Generous, so that a launcher slow to start under load still meets its deadline.
  declareFake('no-pidfile.mjs', 'start_timeout=5');
  const started = await cli('start');
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`x: start failed: php-fpm reported start-up, but ${scratch.runDir}/x.pid did not name a php-fpm master of ${scratch.dir}/x/php-fpm.conf within 5 s (start_timeout); stopped the master it had left`);
  expect(fakeMasters()).toEqual([]);
  expect((await cli('status')).code).toBe(3);
});

test('the well-behaved fake reloads to a new pid like php-fpm, and the record follows it', async () => {
  declareFake('well-behaved.mjs', '');
  expect((await cli('start')).code).toBe(0);
  const reloaded = await cli('reload');
  expect(reloaded.code, reloaded.stderr).toBe(0);
  const [, before, after] = /reloaded \(pid (\d+) → (\d+)\)/.exec(reloaded.stdout) ?? [];
  expect(before).not.toBe(after);
  const status = await cli('--json', 'status');
  expect(JSON.parse(status.stdout).instances[0]).toMatchObject({ state: 'running', pid: Number(after) });
  expect((await cli('stop')).code).toBe(0);
});
