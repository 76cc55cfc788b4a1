// Issue 13 against the real php8.2-fpm: reload and the live slot switch lose no request under a
// FastCGI load loop; after a switch /proc/PID/exe is the new binary and status says running; a
// switch whose config test fails changes nothing; restart runs no config test between its stop
// and its start, and --rolling restarts one instance at a time.
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import { requestFastCgi } from '../../src/fastcgi/client.js';
import { buildGetParams } from '../../src/fastcgi/params.js';
import { createRealSystem, type System } from '../../src/process/system.js';
import { runCli } from '../helpers/cli.js';
import { findFreePort, listFpmProcesses, makeFpmScratch, masterPid, PHP_FPM, requirePrograms, type FpmScratch } from '../helpers/fpm.js';
import { until } from '../helpers/wait.js';

let scratch: FpmScratch;
beforeAll(() => requirePrograms(PHP_FPM));
beforeEach(() => {
  scratch = makeFpmScratch();
  // A slow-ish request: a reload or switch always meets requests in flight.
  writeFileSync(join(scratch.dir, 'slow.php'), '<?php usleep(50000); echo "ok ", getmypid(), "\\n";');
});
afterEach(() => scratch.remove());

/** Generous: this machine runs at load 10 and more while other engineers test. */
const WAIT_MS = 60_000;
/** The load loop's bounds: requests per client and the loop's whole life. */
const MAX_REQUESTS_PER_CLIENT = 5_000;
const LOAD_CLIENTS = 4;

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

/** A php-fpm config with process_control_timeout > 0 (in-flight requests finish on reload) and a ping. */
function writeLosslessConfig(name: string): string {
  mkdirSync(join(scratch.dir, name), { recursive: true, mode: 0o755 });
  const config = join(scratch.dir, name, 'php-fpm.conf');
  writeFileSync(config, [
    '[global]', `error_log = ${join(scratch.dir, name, 'error.log')}`, 'process_control_timeout = 10s', '',
    `[${name}]`, 'user = www-data', 'group = www-data', `listen = ${scratch.socket(name)}`,
    'pm = static', 'pm.max_children = 3', 'ping.path = /ping', '',
  ].join('\n'));
  return config;
}

/** A copy of php-fpm8.2 under another path: for the controller a different binary (another "slot"). */
function copyFpm(name: string): string {
  const copy = join(scratch.dir, name);
  copyFileSync(PHP_FPM, copy);
  chmodSync(copy, 0o755);
  return copy;
}

interface Load {
  ok: number;
  failures: string[];
  /** Stops the loop and waits for the requests in flight; returns the counts. */
  stop(): Promise<{ ok: number; failures: string[] }>;
}

/** A bounded FastCGI load loop on an instance's socket: every request's outcome is counted. */
function startLoad(name: string): Load {
  let running = true;
  const load: Load = {
    ok: 0,
    failures: [],
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return { ok: load.ok, failures: load.failures };
    },
  };
  const deadline = Date.now() + 5 * WAIT_MS;
  const client = async (): Promise<void> => {
    for (let i = 0; running && i < MAX_REQUESTS_PER_CLIENT && Date.now() < deadline; i += 1) {
      try {
        const response = await requestFastCgi(
          { kind: 'unix', path: scratch.socket(name) },
          { params: buildGetParams('/slow.php', { documentRoot: scratch.dir }), timeoutMs: WAIT_MS },
        );
        const body = response.body.toString('utf8');
        if (response.status === 200 && body.startsWith('ok ')) load.ok += 1;
        else load.failures.push(`status ${response.status}: ${body.slice(0, 200)}`);
      } catch (error) {
        load.failures.push(error instanceof Error ? error.message : String(error));
      }
    }
  };
  const clients = Array.from({ length: LOAD_CLIENTS }, client);
  return load;
}

/** Waits until the load loop has `more` successful requests beyond what it had. */
async function answered(load: Load, more: number): Promise<void> {
  const target = load.ok + more;
  await until(`${more} more answered requests`, async () => load.ok >= target || load.failures.length > 0, WAIT_MS);
}

function exeOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`);
}

test('reload under load: no request fails, the master is replaced', async () => {
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${writeLosslessConfig('a')}"`);
  const started = await cli('start');
  expect(started.code, started.stderr).toBe(0);
  const before = masterPid(scratch, 'a');
  const load = startLoad('a');
  await answered(load, 20);
  const reloaded = await cli('reload');
  await answered(load, 20);
  const { ok, failures } = await load.stop();
  expect(reloaded.code, reloaded.stderr).toBe(0);
  expect(reloaded.stdout).toMatch(new RegExp(`a: reloaded \\(pid ${before} → \\d+\\)`));
  expect(failures).toEqual([]);
  expect(ok).toBeGreaterThanOrEqual(40);
  expect(masterPid(scratch, 'a')).not.toBe(before);
});

test('slot switch under load: no request fails, /proc/PID/exe is the new binary, status running, stop stops it', async () => {
  const config = writeLosslessConfig('a');
  const slot2 = copyFpm('php-fpm-slot2');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  const started = await cli('start');
  expect(started.code, started.stderr).toBe(0);
  const before = masterPid(scratch, 'a');
  expect(exeOf(before)).toBe(realpathSync(PHP_FPM));
  // Launched through the controller's symlink, which names the real binary.
  expect(readlinkSync(join(scratch.runDir, 'a.php-fpm'))).toBe(realpathSync(PHP_FPM));

  const load = startLoad('a');
  await answered(load, 20);
  scratch.declare(`FPM_slot_a="binary=${slot2} config=${config}"`);
  const switched = await cli('reload');
  await answered(load, 20);
  // And back: the switch works in both directions, as a slot moves and returns.
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  const back = await cli('reload');
  await answered(load, 20);
  const { ok, failures } = await load.stop();

  expect(switched.code, switched.stderr).toBe(0);
  expect(switched.stdout).toMatch(new RegExp(`a: reloaded \\(pid ${before} → (\\d+)\\); switched ${realpathSync(PHP_FPM)} → ${slot2}`));
  expect(back.code, back.stderr).toBe(0);
  expect(back.stdout).toContain(`; switched ${slot2} → ${realpathSync(PHP_FPM)}`);
  expect(failures).toEqual([]);
  expect(ok).toBeGreaterThanOrEqual(60);

  // Switch once more and look at the master the switch left.
  scratch.declare(`FPM_slot_a="binary=${slot2} config=${config}"`);
  expect((await cli('reload')).code).toBe(0);
  const after = masterPid(scratch, 'a');
  expect(after).not.toBe(before);
  expect(exeOf(after)).toBe(slot2);
  const record = JSON.parse(readFileSync(join(scratch.runDir, 'a.record.json'), 'utf8')) as { binary: string; pid: number };
  expect(record).toMatchObject({ binary: slot2, pid: after });
  const status = await cli('status');
  expect(status.code, status.stdout + status.stderr).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^a +- +running +${after} `, 'm'));
  const stopped = await cli('stop');
  expect(stopped.code, stopped.stderr).toBe(0);
  expect(stopped.stdout).toContain(`a: stopped (pid ${after})`);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

test('a switch to a binary whose config test fails changes nothing: same pid, same binary, still serving', async () => {
  const config = writeLosslessConfig('a');
  // Passes `-v` (php-fpm's own answer) but fails php-fpm's config test, as a slot whose php-fpm
  // cannot read this config would.
  const broken = join(scratch.dir, 'php-fpm-broken');
  writeFileSync(broken, `#!/bin/sh\ncase " $* " in *" --test "*) echo "ERROR: [pool a] unknown directive in ${config}" >&2; exit 78;; esac\nexec ${PHP_FPM} "$@"\n`);
  chmodSync(broken, 0o755);
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  const load = startLoad('a');
  await answered(load, 10);
  scratch.declare(`FPM_slot_a="binary=${broken} config=${config}"`);
  const reloaded = await cli('reload');
  await answered(load, 10);
  const { failures } = await load.stop();
  expect(reloaded.code).toBe(1);
  expect(reloaded.stderr).toContain('a: not reloaded, the running master keeps serving: configuration test failed');
  expect(reloaded.stderr).toContain('unknown directive');
  expect(failures).toEqual([]);
  expect(masterPid(scratch, 'a')).toBe(before);
  expect(exeOf(before)).toBe(realpathSync(PHP_FPM));
  expect(readlinkSync(join(scratch.runDir, 'a.php-fpm'))).toBe(realpathSync(PHP_FPM));
});

test('a master launched directly (an older controller) keeps the refusal: restart it once', async () => {
  const config = writeLosslessConfig('a');
  const slot2 = copyFpm('php-fpm-slot2');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  // What an older controller wrote: no launch path.
  const recordFile = join(scratch.runDir, 'a.record.json');
  const { launchPath: _path, launched: _launched, ...old } = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(recordFile, `${JSON.stringify(old)}\n`);
  scratch.declare(`FPM_slot_a="binary=${slot2} config=${config}"`);
  const reloaded = await cli('reload');
  expect(reloaded.code).toBe(1);
  expect(reloaded.stderr).toContain(`a: not reloaded, the running master (pid ${before}) keeps serving: the binary changed (${realpathSync(PHP_FPM)} → ${slot2}), and its master was launched directly`);
  expect(reloaded.stderr).toContain('run php-fpm-multi restart a once');
  expect(masterPid(scratch, 'a')).toBe(before);
  const restarted = await cli('restart');
  expect(restarted.code, restarted.stderr).toBe(0);
  expect(exeOf(masterPid(scratch, 'a'))).toBe(slot2);
});

test('reload says which edited keys need a restart (php-fpm keeps its arguments and environment)', async () => {
  const config = writeLosslessConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config} env=GREETING=hi 'args=-d memory_limit=256M'"`);
  const reloaded = await cli('reload');
  expect(reloaded.code, reloaded.stderr).toBe(0);
  expect(reloaded.stdout).toContain(
    "; env, args changed since php-fpm was started: a reload keeps php-fpm's arguments and environment, so they take effect only on php-fpm-multi restart a",
  );
  // The reload kept the old launch: still reported on the next reload, until a restart.
  expect((await cli('reload')).stdout).toContain('env, args changed since php-fpm was started');
  expect((await cli('restart')).code).toBe(0);
  expect((await cli('reload')).stdout).not.toContain('changed since php-fpm was started');
});

/** The real system, counting php-fpm config tests and the launches between them. */
function countRuns(): { system: System; runs: string[] } {
  const real = createRealSystem();
  const runs: string[] = [];
  return {
    runs,
    system: {
      ...real,
      run: async (program, args, options) => {
        if (args.includes('--test')) runs.push('test');
        if (args.includes('--daemonize')) runs.push('launch');
        return real.run(program, args, options);
      },
    },
  };
}

test('restart: every config test before the first launch, none between stop and start; --rolling one at a time', async () => {
  scratch.declare(['a', 'b'].map((name) => `FPM_slot_${name}="binary=${PHP_FPM} config=${writeLosslessConfig(name)}"`).join('\n'));
  expect((await cli('start')).code).toBe(0);
  const { system, runs } = countRuns();
  const restarted = await runCli(['--conf', scratch.decl, 'restart'], {}, system);
  expect(restarted.code, restarted.stderr).toBe(0);
  expect(runs).toEqual(['test', 'test', 'launch', 'launch']);

  const pids = { a: masterPid(scratch, 'a'), b: masterPid(scratch, 'b') };
  const rolling = countRuns();
  const rolled = await runCli(['--conf', scratch.decl, 'restart', '--rolling'], {}, rolling.system);
  expect(rolled.code, rolled.stderr).toBe(0);
  expect(rolling.runs).toEqual(['test', 'test', 'launch', 'launch']);
  expect(masterPid(scratch, 'a')).not.toBe(pids.a);
  expect(masterPid(scratch, 'b')).not.toBe(pids.b);
  // One at a time: a's outcome is reported before b is stopped.
  expect(rolled.stdout).toMatch(/a: restarted \(pid \d+ → \d+\)[^]*b: restarted/);

  const misuse = await cli('reload', '--rolling');
  expect(misuse.code).toBe(2);
});

test('restart hands the listening sockets over: under load no request fails; the socket, pidfile and record name the new master', async () => {
  const config = writeLosslessConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  const load = startLoad('a');
  await answered(load, 20);
  const restarted = await cli('restart');
  await answered(load, 20);
  const rolled = await cli('restart', '--rolling');
  await answered(load, 20);
  const { ok, failures } = await load.stop();
  expect(restarted.code, restarted.stderr).toBe(0);
  expect(restarted.stdout).toMatch(new RegExp(`a: restarted \\(pid ${before} → \\d+\\), listening sockets handed over, the old master retired by reload; ready: a answers ping`));
  expect(rolled.code, rolled.stderr).toBe(0);
  expect(rolled.stdout).toContain('listening sockets handed over');
  expect(failures).toEqual([]);
  expect(ok).toBeGreaterThanOrEqual(60);
  const after = masterPid(scratch, 'a');
  expect(after).not.toBe(before);
  expect(JSON.parse(readFileSync(join(scratch.runDir, 'a.record.json'), 'utf8'))).toMatchObject({ pid: after });
  // The symlink the old master retired through names php-fpm again (the new master's reloads).
  expect(readlinkSync(join(scratch.runDir, 'a.php-fpm'))).toBe(PHP_FPM);
  // Only the socket itself is left in its directory: no temporary or spare names.
  expect(readdirSync(join(scratch.dir, 'a')).filter((name) => name.includes('sock')).sort()).toEqual(['php-fpm.sock']);
  const status = await cli('status');
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^a +- +running +${after} `, 'm'));
  expect((await cli('stop')).code).toBe(0);
  expect(listFpmProcesses(scratch.dir)).toEqual([]);
});

/** The file-status flags (octal, /proc/PID/fdinfo) of every listening unix socket `pid` holds. */
function listeningSocketFlags(pid: number): number[] {
  // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; Flags 00010000 is __SO_ACCEPTCON (listening).
  const listening = new Set(readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)
    .map((line) => line.trim().split(/\s+/)).filter((fields) => fields[3] === '00010000').map((fields) => `socket:[${fields[6]}]`));
  return readdirSync(`/proc/${pid}/fd`)
    .filter((fd) => listening.has(readlinkSync(`/proc/${pid}/fd/${fd}`)))
    .map((fd) => Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? 'x', 8));
}

const O_NONBLOCK = 0o4000;

// Tryout 3: a handed-over socket was non-blocking (as node creates it), so every accept that found
// no connection ended a worker and php-fpm forked it again, hundreds of times a second, for ever.
test('a handed-over listening socket is blocking, as one php-fpm binds itself: its workers stay', async () => {
  const config = writeLosslessConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const fresh = listeningSocketFlags(masterPid(scratch, 'a'));
  expect(fresh.length).toBeGreaterThan(0);
  expect(fresh.filter((flags) => (flags & O_NONBLOCK) !== 0)).toEqual([]);
  const restarted = await cli('restart');
  expect(restarted.stdout).toContain('listening sockets handed over');
  const after = masterPid(scratch, 'a');
  const handed = listeningSocketFlags(after);
  expect(handed.length).toBeGreaterThan(0);
  expect(handed.filter((flags) => (flags & O_NONBLOCK) !== 0)).toEqual([]);
  // The same workers serve request after request: none was ended and forked again meanwhile.
  const workers = (): number[] => listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: pool')).map((p) => p.pid).sort();
  await until('its three workers', async () => workers().length === 3);
  const before = workers();
  const load = startLoad('a');
  await answered(load, 20);
  expect((await load.stop()).failures).toEqual([]);
  expect(workers()).toEqual(before);
  expect(readFileSync(join(scratch.dir, 'a', 'error.log'), 'utf8')).not.toMatch(/child \d+ exited with code 0/);
});

test('restart of a TCP pool is a stop and a start (no hand-over); a hand-over whose new master fails leaves the old one serving', async () => {
  const port = await findFreePort();
  const config = writeLosslessConfig('a');
  writeFileSync(config, readFileSync(config, 'utf8').replace(`listen = ${scratch.socket('a')}`, `listen = 127.0.0.1:${port}`));
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const tcp = await cli('restart');
  expect(tcp.code, tcp.stderr).toBe(0);
  expect(tcp.stdout).toMatch(/a: started \(pid \d+\)/);
  expect(tcp.stdout).not.toContain('handed over');
  expect((await cli('stop')).code).toBe(0);

  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${writeLosslessConfig('a')}"`);
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  const real = createRealSystem();
  // The new master of the hand-over fails after binding nothing (as a php-fpm failing its start would).
  const failing: System = {
    ...real,
    run: async (program, args, options) => (options.env['FPM_SOCKETS'] !== undefined
      ? { exitCode: 70, signal: null, stdout: '', stderr: 'ERROR: FPM initialization failed', timedOut: false }
      : real.run(program, args, options)),
  };
  const load = startLoad('a');
  await answered(load, 10);
  const refused = await runCli(['--conf', scratch.decl, 'restart'], {}, failing);
  await answered(load, 10);
  const { failures } = await load.stop();
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`a: not restarted, left as it was (pid ${before} still serves): the new php-fpm exited with status 70`);
  expect(failures).toEqual([]);
  expect(masterPid(scratch, 'a')).toBe(before);
  expect(readdirSync(join(scratch.dir, 'a')).filter((name) => name.includes('sock')).sort()).toEqual(['php-fpm.sock']);
  expect((await cli('status')).stdout).toMatch(new RegExp(`^a +- +running +${before} `, 'm'));
});

test('a hand-over to replace a master launched directly stops the old one and puts the socket name back after its exit', async () => {
  const config = writeLosslessConfig('a');
  scratch.declare(`FPM_slot_a="binary=${PHP_FPM} config=${config}"`);
  expect((await cli('start')).code).toBe(0);
  const before = masterPid(scratch, 'a');
  // What an older controller wrote: no launch path, so the old master cannot retire by reload.
  const recordFile = join(scratch.runDir, 'a.record.json');
  const { launchPath: _path, launched: _launched, ...older } = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(recordFile, `${JSON.stringify(older)}\n`);
  const restarted = await cli('restart');
  expect(restarted.code, restarted.stderr).toBe(0);
  expect(restarted.stdout).toMatch(new RegExp(`a: restarted \\(pid ${before} → \\d+\\), listening sockets handed over, the old master stopped; ready: a answers ping`));
  const after = masterPid(scratch, 'a');
  expect(after).not.toBe(before);
  // The old master's exit unlinked the listen path; the new socket's spare name took it again.
  expect(readdirSync(join(scratch.dir, 'a')).filter((name) => name.includes('sock')).sort()).toEqual(['php-fpm.sock']);
  const load = startLoad('a');
  await answered(load, 10);
  expect((await load.stop()).failures).toEqual([]);
  expect(listFpmProcesses(scratch.dir).filter((p) => p.title.startsWith('php-fpm: master')).map((p) => p.pid)).toEqual([after]);
});
