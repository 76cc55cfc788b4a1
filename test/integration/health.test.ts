// Pool health against real php8.2-fpm: `status --pools`, `health` (text and Prometheus) and the
// readiness wait of start and reload; readiness failures with the fake masters of
// test/fixtures/fake-fpm, whose pools are played by a FastCGI responder of the test itself.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, chmodSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { buildGetParams } from '../../src/fastcgi/params.js';
import { requestFastCgi, type FastCgiAddress } from '../../src/fastcgi/client.js';
import { createRealSystem, type System } from '../../src/process/system.js';
import { runCli } from '../helpers/cli.js';
import {
  CGI_FCGI, findFreePort, hideListeningSockets, listProcessesUnder, makeFpmScratch, masterPid, PHP_FPM, PROMTOOL, requirePrograms,
  serveFakePool, type FakePool, type FpmScratch,
} from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

let scratch: FpmScratch;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI, PROMTOOL));
beforeEach(() => {
  scratch = makeFpmScratch();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  scratch.remove();
});

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** A second pool section for a scratch config (writeConfig appends `extra` after the first pool). */
function poolSection(name: string, lines: readonly string[]): string {
  return ['', `[${name}]`, 'user = www-data', 'group = www-data', ...lines].join('\n');
}

interface PoolRow {
  instance: string;
  pool: string;
  listen: string;
  status_page: string;
  problem: string | null;
  figures: { accepted_connections: number; active_processes: number; idle_processes: number; total_processes: number; listen_queue: number } | null;
}

async function readPoolRows(...names: string[]): Promise<Map<string, PoolRow>> {
  const result = await cli('--json', 'status', '--pools', ...names);
  expect(result.stderr).toBe('');
  const rows = (JSON.parse(result.stdout) as { pools: PoolRow[] }).pools;
  return new Map(rows.map((row) => [`${row.instance}/${row.pool}`, row]));
}

function acceptedOf(rows: Map<string, PoolRow>, key: string): number {
  const figures = rows.get(key)?.figures;
  expect(figures, `${key} has figures`).toBeTruthy();
  return figures!.accepted_connections;
}

/** `count` real requests for index.php, one after the other; each must be served by its instance. */
async function requestIndex(address: FastCgiAddress, instance: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const response = await requestFastCgi(address, { params: { ...buildGetParams('/index.php', { documentRoot: scratch.dir }), INSTANCE: instance } });
    expect(response.body.toString().trim()).toBe(`hello from ${instance}`);
  }
}

describe('two real instances, three pools (unix, TCP, and a status on pm.status_listen)', () => {
  let port: number;

  beforeEach(async () => {
    port = await findFreePort();
    const a = scratch.writeConfig('a', ['ping.path = /ping', 'pm.status_path = /status', poolSection('api', [
      `listen = 127.0.0.1:${port}`, 'pm = dynamic', 'pm.max_children = 3', 'pm.start_servers = 1', 'pm.min_spare_servers = 1',
      'pm.max_spare_servers = 2', 'env[INSTANCE] = a', 'ping.path = /health', 'ping.response = ready', 'pm.status_path = /fpm-status',
    ])].join('\n'));
    const b = scratch.writeConfig('b', ['ping.path = /ping', 'pm.status_path = /status', `pm.status_listen = ${join(scratch.dir, 'b', 'status.sock')}`].join('\n'));
    scratch.declare(`FPM_slot_a="slot=8.2 config=${a}"\nFPM_slot_b="slot=8.2 config=${b}"`);
  });

  test('start and reload report each ping pool ready; status --pools counts the requests sent; health exits 0; promtool accepts the metrics', async () => {
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^php-fpm-multi: a: started \(pid \d+\); ready: a, api answer ping$/m);
    expect(started.stdout).toMatch(/^php-fpm-multi: b: started \(pid \d+\); ready: b answers ping$/m);

    const before = await readPoolRows();
    expect([...before.keys()]).toEqual(['a/a', 'a/api', 'b/b']);
    for (const row of before.values()) expect(row).toMatchObject({ status_page: 'answered', problem: null });
    await requestIndex({ kind: 'unix', path: scratch.socket('a') }, 'a', 3);
    await requestIndex({ kind: 'tcp', host: '127.0.0.1', port }, 'a', 5);
    await requestIndex({ kind: 'unix', path: scratch.socket('b') }, 'b', 2);
    const after = await readPoolRows();
    // php-fpm counts the status request itself on the pool's own listener (the second one here),
    // and does not count a request to pm.status_listen, which has its own worker.
    expect(acceptedOf(after, 'a/a') - acceptedOf(before, 'a/a')).toBe(3 + 1);
    expect(acceptedOf(after, 'a/api') - acceptedOf(before, 'a/api')).toBe(5 + 1);
    expect(acceptedOf(after, 'b/b') - acceptedOf(before, 'b/b')).toBe(2);

    const table = await cli('status', '--pools');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^INSTANCE +POOL +LISTEN +PM +ACTIVE +IDLE +TOTAL +QUEUE +MAX-QUEUE +ACCEPTED +MAX-CHILDREN-REACHED +SLOW$/);
    expect(lines).toHaveLength(4); // every pool answered: no notes
    // The figures of this very request: the status page is served by one of the pool's workers.
    expect(lines[1]).toMatch(new RegExp(`^a +a +${scratch.socket('a')} +static +1 +1 +2 +0 +0 +${acceptedOf(after, 'a/a') + 1} +0 +0$`));
    expect(lines[2]).toMatch(new RegExp(`^a +api +127\\.0\\.0\\.1:${port} +dynamic +1 +\\d+ +\\d+ +0 +0 +${acceptedOf(after, 'a/api') + 1} +0 +0$`));
    expect(lines[3]).toMatch(new RegExp(`^b +b +${scratch.socket('b')} +static +0 +2 +2 +0 +0 +${acceptedOf(after, 'b/b')} +0 +0$`));

    expect(await cli('health')).toEqual({ code: 0, stdout: '', stderr: '' });
    const metrics = await cli('health', '--format', 'prometheus');
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(metrics.stdout).toContain('phpfpm_multi_pool_up{instance="a",pool="api"} 1\n');
    // Since `after`: the pings of both health runs (the second one maybe after its status page).
    const accepted = /^phpfpm_multi_pool_accepted_connections_total\{instance="b",pool="b"\} (\d+)$/m.exec(metrics.stdout)?.[1];
    expect(Number(accepted) - acceptedOf(after, 'b/b')).toBeGreaterThanOrEqual(1);
    expect(Number(accepted) - acceptedOf(after, 'b/b')).toBeLessThanOrEqual(2);
    const promtool = spawnSync(PROMTOOL, ['check', 'metrics'], { input: metrics.stdout, encoding: 'utf8', timeout: 30_000 });
    expect(promtool.status, `${promtool.stdout}${promtool.stderr}`).toBe(0);
    expect(promtool.stdout + promtool.stderr).toBe('');

    const oldPids = ['a', 'b'].map((name) => masterPid(scratch, name));
    const reloaded = await cli('reload');
    expect(reloaded.code, reloaded.stderr).toBe(0);
    expect(reloaded.stdout).toContain(`a: reloaded (pid ${oldPids[0]} → ${masterPid(scratch, 'a')}); ready: a, api answer ping`);
    expect(reloaded.stdout).toContain(`b: reloaded (pid ${oldPids[1]} → ${masterPid(scratch, 'b')}); ready: b answers ping`);
    const restarted = await cli('restart', 'a');
    expect(restarted.code, restarted.stderr).toBe(0);
    // Its own stop is not mistaken for a crash.
    expect(restarted.stdout).toMatch(/^php-fpm-multi: a: started \(pid \d+\); ready: a, api answer ping$/m);
    expect((await cli('stop')).code).toBe(0);
  });

  test('a pool whose socket was removed: health exits 1 with one line naming it and its address; the others stay quiet', async () => {
    expect((await cli('start')).code).toBe(0);
    rmSync(scratch.socket('a')); // php-fpm keeps listening on the unlinked inode: the path answers no more
    const health = await cli('health');
    expect(health.code).toBe(1);
    expect(health.stdout).toBe(
      `php-fpm-multi: a/a: ping /ping failed: FastCGI unix:${scratch.socket('a')}: the socket ${scratch.socket('a')} does not exist (ENOENT). ` +
        'Check that the pool is running and that its listen directive is this address.\n',
    );
    const metrics = await cli('health', '--format', 'prometheus');
    expect(metrics.code).toBe(1);
    expect(metrics.stderr).toMatch(/^php-fpm-multi: a\/a: ping \/ping failed: .*ENOENT/);
    expect(metrics.stdout).toContain('phpfpm_multi_pool_up{instance="a",pool="a"} 0\nphpfpm_multi_pool_up{instance="a",pool="api"} 1\n');
    expect(metrics.stdout).not.toContain('phpfpm_multi_pool_accepted_connections_total{instance="a",pool="a"}');
    const table = await cli('status', '--pools', 'a');
    expect(table.code).toBe(0); // status reports the instances' states; health judges the pools
    expect(table.stdout).toMatch(new RegExp(`^a +a +${scratch.socket('a')} +static +- +- +- +- +- +- +- +-$`, 'm'));
    expect(table.stdout).toContain(`  a/a: status page /status failed: FastCGI unix:${scratch.socket('a')}: the socket ${scratch.socket('a')} does not exist (ENOENT).`);
  });

  test('an instance that is not running fails health; status --pools shows its pools as known from the config', async () => {
    expect((await cli('start', 'a')).code).toBe(0);
    const health = await cli('health');
    expect(health).toMatchObject({ code: 1, stdout: 'php-fpm-multi: b: not running (stopped); start it: php-fpm-multi start b\n' });
    const table = await cli('status', '--pools');
    expect(table.code).toBe(1); // some running, some stopped: as status
    expect(table.stdout).toMatch(new RegExp(`^b +b +${scratch.socket('b')} +static +- +- +- +- +- +- +- +-$`, 'm'));
    expect(table.stdout).toContain('  b: stopped: its pools were not asked\n');
    expect((await cli('health', 'a')).code).toBe(0); // named instances only
  });
});

test('a saturated pool (its only worker busy, requests queued): status --pools shows the queue, health fails on the ping', async () => {
  const port = await findFreePort();
  const flags = join(scratch.dir, 'flags');
  mkdirSync(flags);
  chmodSync(flags, 0o777); // the worker (www-data) says when it is busy
  writeFileSync(join(scratch.dir, 'slow.php'), `<?php touch("${flags}/busy"); sleep(5); echo "slept\\n";`);
  const config = scratch.writeConfig('s', [
    `listen = 127.0.0.1:${port}`, 'pm.max_children = 1', 'ping.path = /ping', 'pm.status_path = /status',
    `pm.status_listen = ${join(scratch.dir, 's', 'status.sock')}`,
  ].join('\n'));
  scratch.declare(`FPM_slot_s="slot=8.2 config=${config}"`);
  expect((await cli('start')).code).toBe(0);

  const address: FastCgiAddress = { kind: 'tcp', host: '127.0.0.1', port };
  // Settled by the end of the test at the latest: the cleanup kills the pool, which closes them.
  const pending = ['/slow.php', '/index.php', '/index.php'].map((uri) =>
    requestFastCgi(address, { params: buildGetParams(uri, { documentRoot: scratch.dir }), timeoutMs: 30_000 }).catch(() => null));
  cleanups.push(async () => {
    scratch.remove();
    await Promise.all(pending);
  });
  await until('the slow script to run', async () => existsSync(join(flags, 'busy')));

  const rows = await until('both waiting requests in the listen queue', async () => {
    const rows = await readPoolRows();
    return rows.get('s/s')?.figures?.listen_queue === 2 ? rows : null;
  });
  expect(rows.get('s/s')?.figures).toMatchObject({ active_processes: 1, idle_processes: 0, total_processes: 1, listen_queue: 2 });
  const health = await cli('health');
  expect(health.code).toBe(1);
  const lines = health.stdout.split('\n');
  expect(lines).toHaveLength(2); // one line, and its line feed
  expect(lines[0]).toMatch(new RegExp(`^php-fpm-multi: s/s: ping /ping failed: FastCGI tcp:127\\.0\\.0\\.1:${port}: no complete reply within 2000 ms \\(connected, request sent, 0 bytes received`));
  expect(lines[0]).toContain('The pool may be saturated (every pm.max_children worker busy');
});

describe('readiness with a fake master, its pool played by the test', () => {
  const FAKES = join(import.meta.dirname, '..', 'fixtures', 'fake-fpm');
  const NODE = realpathSync(process.execPath);
  /** The fakes run under node: to the kernel their executable is node (see control-faults.test.ts). */
  function systemForFakes(): System {
    const real = createRealSystem();
    // The test plays the pool: its own listening socket is no other holder of the address here.
    return hideListeningSockets({ ...real, realpath: async (path) => (path.startsWith(FAKES) ? NODE : real.realpath(path)) });
  }
  const fakeCli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args], {}, systemForFakes());
  const fakeMasters = () => listProcessesUnder(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master'));

  function declareFake(poolLines: string, keys: string): void {
    scratch.declare(`FPM_slot_x="binary=${join(FAKES, 'well-behaved.mjs')} config=${scratch.writeConfig('x', poolLines)} ${keys}"`);
  }

  async function servePool(answer: Parameters<typeof serveFakePool>[1]): Promise<FakePool> {
    const pool = await serveFakePool(scratch.socket('x'), answer);
    cleanups.push(() => pool.close());
    return pool;
  }

  test('start reports the pool ready only once it answers its ping.response', async () => {
    declareFake('ping.path = /alive\nping.response = alive', 'start_timeout=10');
    const DELAY_MS = 500;
    const began = Date.now();
    // The pool comes up only after a while, as a pool warming up (opcache preload) would.
    const late = delay(DELAY_MS).then(() => servePool(() => ({ body: 'alive' })));
    const started = await fakeCli('start');
    const pool = await late;
    expect(started.code, started.stderr).toBe(0);
    expect(Date.now() - began).toBeGreaterThanOrEqual(DELAY_MS);
    expect(started.stdout).toMatch(/^php-fpm-multi: x: started \(pid \d+\); ready: x answers ping$/m);
    expect(pool.requests.map((request) => [request['SCRIPT_NAME'], request['REQUEST_METHOD']])).toEqual([['/alive', 'GET']]);
    expect((await fakeCli('stop')).code).toBe(0);
  });

  test('a pool that never answers fails start after start_timeout, naming the pool and its address; the master is stopped', async () => {
    // Generous: the fake master itself must come up within start_timeout on a loaded machine.
    declareFake('ping.path = /ping', 'start_timeout=5');
    const began = Date.now();
    const started = await fakeCli('start');
    const elapsedMs = Date.now() - began;
    expect(started.code).toBe(1);
    const socket = scratch.socket('x');
    expect(started.stderr).toMatch(new RegExp(
      '^php-fpm-multi: x: start failed: a pool did not answer within 5 s \\(start_timeout; raise it if the pool is only slow to start\\), ' +
        `so its master \\(pid \\d+\\) was stopped:\\n    pool 'x' \\(unix:${socket}\\) did not answer ping /ping with "pong": ` +
        `FastCGI unix:${socket}: the socket ${socket} does not exist \\(ENOENT\\)\\. Check that the pool is running`,
    ));
    expect(started.stderr).toContain('php-fpm-multi: not started: x (1 of 1)');
    expect(elapsedMs).toBeGreaterThanOrEqual(5_000); // it waited out start_timeout …
    expect(elapsedMs).toBeLessThan(45_000); // … and then gave up (the test's own limit is 60 s)
    expect(fakeMasters()).toEqual([]);
    expect(existsSync(join(scratch.runDir, 'x.pid'))).toBe(false);
    expect(existsSync(join(scratch.runDir, 'x.record.json'))).toBe(false);
    const status = await fakeCli('status');
    expect(status.code).toBe(3);
    expect(status.stdout).toContain("x: last start failed at ");
    expect(status.stdout).toContain("pool 'x' (unix:");
  });

  test('a pool that answers something else than its ping.response is not ready', async () => {
    // Generous: a sub-second start_timeout failed here under load (the fake master itself was late).
    declareFake('ping.path = /ping', 'start_timeout=5');
    const pool = await servePool(() => ({ body: 'nope' }));
    const started = await fakeCli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(
      `pool 'x' (unix:${scratch.socket('x')}) did not answer ping /ping with "pong": FastCGI unix:${scratch.socket('x')}: /ping answered 200 Fake "nope", not "pong" (ping.response).`,
    );
    expect(pool.requests.length).toBeGreaterThan(1); // asked again until start_timeout
    expect(fakeMasters()).toEqual([]);
  });
});

describe('the command line of status --pools and health', () => {
  test.each([
    [['health', '--format', 'yaml'], 'unknown --format "yaml"; one of: text, prometheus'],
    [['health', '--format'], 'unknown --format ""; one of: text, prometheus'],
    [['status', '--format', 'prometheus'], '--format goes with health, not status'],
    [['start', '--pools'], '--pools goes with status, not start'],
    [['--json', 'health'], 'health has no --json; use --format prometheus for machine-readable output'],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    expect(await runCli(argv)).toEqual({ code: 2, stdout: '', stderr: `php-fpm-multi: ${message}\n` });
  });

  test('health with no enabled instance exits 6: a check of nothing must not pass', async () => {
    const config = scratch.writeConfig('a');
    scratch.declare(`FPM_slot_a="slot=8.2 config=${config} enabled=no"`);
    const result = await cli('health');
    expect(result.code).toBe(6);
    expect(result.stderr).toContain(`${scratch.decl} declares no enabled instance, so nothing was checked`);
  });

  test('--help documents health, --pools and --format', async () => {
    const help = (await runCli(['--help'])).stdout;
    expect(help).toContain('\n  health ');
    expect(help).toContain('--pools');
    expect(help).toContain('--format FMT');
    expect(help).toMatch(/^ +health: an instance is not running or a pool does not answer in time$/m);
  });
});
