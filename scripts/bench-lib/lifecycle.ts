// scripts/bench --lifecycle: what users see of the lifecycle operations. nginx (Debian
// nginx-light, loopback only) in front of N real php8.2-fpm instances, a bounded and paced load
// (Debian wrk, loopback only), and per operation the failed requests (nginx 5xx + socket errors),
// the 502 window per instance (first to last 5xx of that instance in nginx's access log) and the
// maximum latency, as medians over the repetitions. Operations: reload, slot switch (two slots:
// php-fpm8.2 and a copy of it under another path, a different binary for identity), restart,
// restart --rolling, stop then start, and the per-slot baseline (scripts/bench-lib/per-slot.sh:
// one start-stop-daemon runscript per slot, stop then start, one slot after the other), in the
// same run, taking turns within each repetition. Everything it starts is stopped at exit, even
// on failure or Ctrl-C, and the scratch directory removed.
//
// Usage: scripts/bench --lifecycle [--reps K] [--instances N] [--duration S] [--json FILE]
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRoot } from './root.js';

const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
const CLI = path.join(ROOT, 'dist', 'cli.js');
const PER_SLOT = path.join(ROOT, 'scripts', 'bench-lib', 'per-slot.sh');
const FPM = '/usr/sbin/php-fpm8.2';
const NGINX = '/usr/sbin/nginx';
const WRK = '/usr/bin/wrk';
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
/** The PHP request: 20 ms of work, as the measurement. */
const REQUEST_MS = 20;
/** Each wrk connection waits this long between requests: 16 connections give about 220 requests/s. */
const PACE_DELAY_MS = 50;
/** The operation starts this long into the load, so that the load is steady before it. */
const OPERATION_AFTER_MS = 3_000;
/** Every command and every wait is bounded: a hung operation fails the benchmark instead of hanging it. */
const COMMAND_TIMEOUT_MS = 120_000;

type Operation = 'reload' | 'switch' | 'restart' | 'restart --rolling' | 'stop+start' | 'per-slot baseline';
const OPERATIONS: readonly Operation[] = ['reload', 'switch', 'restart', 'restart --rolling', 'stop+start', 'per-slot baseline'];

interface Options {
  reps: number;
  instances: number;
  durationS: number;
  json: string;
}

function usage(): string {
  return `Usage: scripts/bench --lifecycle [--reps K] [--instances N] [--duration S] [--json FILE] [--no-setup]

  --reps K        repetitions of every operation (default 5; each figure is their median)
  --instances N   php-fpm instances behind nginx (default 2)
  --duration S    seconds of load per repetition and operation (default 10; the operation starts at 3 s)
  --json FILE     where to write the results (default bench-results/lifecycle.json)
`;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { reps: 5, instances: 2, durationS: 10, json: path.join(ROOT, 'bench-results', 'lifecycle.json') };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--lifecycle' || arg === '--no-setup') continue;
    else if (arg === '--reps') options.reps = Number(value());
    else if (arg === '--instances') options.instances = Number(value());
    else if (arg === '--duration') options.durationS = Number(value());
    else if (arg === '--json') options.json = path.resolve(value());
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${usage()}`);
  }
  if (!Number.isInteger(options.reps) || options.reps < 1 || options.reps > 50) throw new Error('--reps: an integer from 1 to 50');
  if (!Number.isInteger(options.instances) || options.instances < 1 || options.instances > 32) throw new Error('--instances: an integer from 1 to 32');
  if (!Number.isInteger(options.durationS) || options.durationS < 6 || options.durationS > 120) throw new Error('--duration: seconds from 6 to 120');
  return options;
}

const log = (text: string): void => void process.stderr.write(`bench: ${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function preflight(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('run as root: php-fpm pools and nginx workers run as www-data');
  for (const [program, fix] of [[FPM, 'php8.2-fpm'], [NGINX, 'nginx-light'], [WRK, 'wrk'], [CLI, 'scripts/setup builds it']] as const) {
    if (!fs.existsSync(program)) problems.push(`${program} is missing (${fix}); scripts/bench --lifecycle installs the packages`);
  }
  if (spawnSync('start-stop-daemon', ['--version'], { env: ENV }).error !== undefined) problems.push('start-stop-daemon is missing (dpkg): the per-slot baseline needs it');
  if (problems.length > 0) throw new Error(`cannot benchmark:\n  ${problems.join('\n  ')}`);
}

interface Instance {
  name: string;
  config: string;
  socket: string;
  /** The per-slot baseline's pidfile (the controller's are in its run directory). */
  slotPidfile: string;
}

interface Scratch {
  dir: string;
  runDir: string;
  decl: string;
  list: string;
  instances: Instance[];
  slots: [string, string];
  nginxConf: string;
  nginxPidfile: string;
  accessLog: string;
  wrkScript: string;
  port: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was assigned');
  return address.port;
}

async function createScratch(n: number): Promise<Scratch> {
  const dir = fs.mkdtempSync('/tmp/php-fpm-multi-lifecycle-');
  fs.chmodSync(dir, 0o755); // www-data (php-fpm workers, nginx workers) reaches sockets and the script through it
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'app.php'), `<?php usleep(${REQUEST_MS * 1000}); echo "ok\\n";`);
  // The second slot: the same php-fpm under another path, a different binary for identity.
  const slotB = path.join(dir, 'slot-b', 'php-fpm8.2');
  fs.mkdirSync(path.dirname(slotB), { mode: 0o755 });
  fs.copyFileSync(FPM, slotB);
  fs.chmodSync(slotB, 0o755);
  const instances: Instance[] = [];
  for (let k = 1; k <= n; k += 1) {
    const home = path.join(dir, `i${k}`);
    fs.mkdirSync(home, { mode: 0o755 });
    const config = path.join(home, 'php-fpm.conf');
    const socket = path.join(home, 'php-fpm.sock');
    fs.writeFileSync(config, [
      // process_control_timeout > 0: requests in flight finish on reload and on graceful stop.
      '[global]', `error_log = ${path.join(home, 'error.log')}`, 'process_control_timeout = 10s', '',
      `[i${k}]`, 'user = www-data', 'group = www-data', `listen = ${socket}`,
      'listen.owner = www-data', 'listen.group = www-data', 'listen.mode = 0660',
      'pm = static', 'pm.max_children = 4', 'ping.path = /ping', '',
    ].join('\n'));
    instances.push({ name: `i${k}`, config, socket, slotPidfile: path.join(dir, `slot-${k}.pid`) });
  }
  const list = path.join(dir, 'slots');
  fs.writeFileSync(list, instances.map((i) => `${i.name} ${i.config} ${i.slotPidfile}`).join('\n') + '\n');
  const nginxDir = path.join(dir, 'nginx');
  fs.mkdirSync(nginxDir, { mode: 0o755 });
  const port = await freePort();
  const accessLog = path.join(nginxDir, 'access.log');
  const nginxPidfile = path.join(nginxDir, 'nginx.pid');
  const nginxConf = path.join(nginxDir, 'nginx.conf');
  const temp = (name: string): string => `${name}_temp_path ${path.join(nginxDir, name)};`;
  fs.writeFileSync(nginxConf, [
    'user www-data;', 'worker_processes 1;', `pid ${nginxPidfile};`, `error_log ${path.join(nginxDir, 'error.log')} error;`,
    'events { worker_connections 1024; }',
    'http {',
    '  log_format lifecycle \'$msec $status $request_time $uri\';',
    `  access_log ${accessLog} lifecycle;`,
    `  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}`,
    `  server {`,
    `    listen 127.0.0.1:${port};`,
    ...instances.map((i) => [
      `    location /${i.name}/ {`,
      '      include /etc/nginx/fastcgi_params;',
      `      fastcgi_param SCRIPT_FILENAME ${path.join(dir, 'app.php')};`,
      '      fastcgi_param SCRIPT_NAME /app.php;',
      `      fastcgi_pass unix:${i.socket};`,
      '    }',
    ].join('\n')),
    '  }',
    '}', '',
  ].join('\n'));
  const wrkScript = path.join(dir, 'load.lua');
  fs.writeFileSync(wrkScript, [
    `local n = ${n}`, 'local i = 0',
    'request = function()', '  i = i + 1', '  return wrk.format("GET", "/i" .. (i % n + 1) .. "/")', 'end',
    `delay = function() return ${PACE_DELAY_MS} end`,
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("LIFECYCLE {\\"requests\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"max_latency_us\\":%d}\\n",',
    '    summary.requests, e.connect, e.read, e.write, e.status, e.timeout, latency.max))',
    'end', '',
  ].join('\n'));
  const scratch: Scratch = {
    dir, runDir, decl: path.join(dir, 'php-fpm'), list, instances, slots: [FPM, slotB], nginxConf, nginxPidfile, accessLog, wrkScript, port,
  };
  declare(scratch, 0);
  return scratch;
}

/** Writes the declaration with every instance on slot `slot` (0: php-fpm8.2, 1: the copy). */
function declare(scratch: Scratch, slot: 0 | 1): void {
  const lines = scratch.instances.map((i) => `FPM_slot_${i.name}="binary=${scratch.slots[slot]} config=${i.config}"`);
  fs.writeFileSync(scratch.decl, `${lines.join('\n')}\nFPM_run_dir=${scratch.runDir}\n`);
}

function run(program: string, args: readonly string[], what: string): string {
  const result = spawnSync(program, args, { encoding: 'utf8', env: ENV, timeout: COMMAND_TIMEOUT_MS });
  if (result.status !== 0) throw new Error(`${what} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`);
  return result.stdout;
}

const controller = (...args: string[]): string => run(process.execPath, [CLI, '--conf', scratch!.decl, ...args], `php-fpm-multi ${args.join(' ')}`);

interface WrkResult {
  requests: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  max_latency_us: number;
}

/** wrk against nginx on loopback for `durationS`, paced, with a hard time limit of its own. */
function startLoad(s: Scratch, durationS: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRK, ['-t2', '-c16', `-d${durationS}s`, '--timeout', '5s', '-s', s.wrkScript, `http://127.0.0.1:${s.port}/`], { env: ENV });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), (durationS + 30) * 1000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(killer);
      const line = /^LIFECYCLE (.*)$/m.exec(out);
      if (line === null) reject(new Error(`wrk gave no result: ${out}`));
      else resolve(JSON.parse(line[1]!) as WrkResult);
    });
  });
}

interface Sample {
  failed: number;
  nginx_5xx: number;
  socket_errors: number;
  requests: number;
  max_latency_ms: number;
  /** Per instance: ms from its first to its last 5xx (0 when one or none). */
  window_ms: Record<string, number>;
  operation_ms: number;
}

/** The 5xx responses nginx logged since `offset`, per instance. */
function read5xx(s: Scratch, offset: number): { count: number; window: Record<string, number> } {
  const text = fs.readFileSync(s.accessLog, 'utf8').slice(offset);
  const times = new Map<string, number[]>();
  let count = 0;
  for (const line of text.split('\n')) {
    const [msec, status, , uri] = line.split(' ');
    if (msec === undefined || status === undefined || uri === undefined || !status.startsWith('5')) continue;
    count += 1;
    const name = uri.split('/')[1] ?? '?';
    times.set(name, [...(times.get(name) ?? []), Number(msec) * 1000]);
  }
  const window: Record<string, number> = {};
  for (const i of s.instances) {
    const t = times.get(i.name) ?? [];
    window[i.name] = t.length < 2 ? 0 : Math.round(Math.max(...t) - Math.min(...t));
  }
  return { count, window };
}

function perSlot(action: 'start' | 'stop', instance: Instance): void {
  run('/bin/sh', [PER_SLOT, '--slot', action, instance.name, instance.config, instance.slotPidfile], `per-slot ${action} ${instance.name}`);
}

let switchSlot: 0 | 1 = 0;
/** Runs one operation on every instance. */
function operate(s: Scratch, operation: Operation): void {
  switch (operation) {
    case 'reload':
      controller('reload');
      return;
    case 'switch':
      switchSlot = switchSlot === 0 ? 1 : 0;
      declare(s, switchSlot);
      controller('reload');
      return;
    case 'restart':
      controller('restart');
      return;
    case 'restart --rolling':
      controller('restart', '--rolling');
      return;
    case 'stop+start':
      controller('stop');
      controller('start');
      return;
    case 'per-slot baseline':
      // What an admin does with one runscript per slot: restart each slot's service in turn.
      for (const instance of s.instances) {
        perSlot('stop', instance);
        perSlot('start', instance);
      }
      return;
  }
}

async function measure(s: Scratch, operation: Operation, durationS: number): Promise<Sample> {
  const offset = fs.statSync(s.accessLog).size;
  const load = startLoad(s, durationS);
  await sleep(OPERATION_AFTER_MS);
  const began = performance.now();
  operate(s, operation);
  const operationMs = performance.now() - began;
  const wrk = await load;
  await sleep(200); // nginx writes its last log lines
  const logged = read5xx(s, offset);
  const socketErrors = wrk.connect + wrk.read + wrk.write + wrk.timeout;
  return {
    // wrk counts non-2xx/3xx answers as status errors: nginx's 5xx (502 while no php-fpm listens).
    failed: wrk.status + socketErrors,
    nginx_5xx: logged.count,
    socket_errors: socketErrors,
    requests: wrk.requests,
    max_latency_ms: Math.round(wrk.max_latency_us / 1000),
    window_ms: logged.window,
    operation_ms: Math.round(operationMs),
  };
}

function startNginx(s: Scratch): void {
  fs.writeFileSync(s.accessLog, '');
  run(NGINX, ['-c', s.nginxConf, '-p', path.dirname(s.nginxConf)], 'nginx');
}

function stopNginx(s: Scratch): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(s.nginxPidfile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid < 2) return;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return;
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Every php-fpm master of the scratch directory (controller's or per-slot's), for the clean-up. */
function mastersOf(s: Scratch): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (title.startsWith('php-fpm: master process') && title.includes(s.dir)) found.push(Number(entry));
    } catch {
      // exited
    }
  }
  return found;
}

let scratch: Scratch | null = null;
let cleaned = false;
function cleanUp(): void {
  if (cleaned || scratch === null) return;
  cleaned = true;
  const s = scratch;
  try {
    stopNginx(s);
    spawnSync(process.execPath, [CLI, '--conf', s.decl, 'stop'], { env: ENV, timeout: COMMAND_TIMEOUT_MS });
    for (const instance of s.instances) {
      spawnSync('/bin/sh', [PER_SLOT, '--slot', 'stop', instance.name, instance.config, instance.slotPidfile], { env: ENV, timeout: COMMAND_TIMEOUT_MS });
    }
    for (const pid of mastersOf(s)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(s.dir, { recursive: true, force: true });
  } catch (error) {
    log(`cleanup failed: ${(error as Error).message}`);
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything of this run and removing the scratch directory`);
    cleanUp();
    process.exit(128 + os.constants.signals[sig]);
  });
}
process.on('exit', cleanUp);

interface OperationResult {
  samples: Sample[];
  failed_median: number;
  failed_max: number;
  window_ms_median: Record<string, number>;
  max_latency_ms_median: number;
  operation_ms_median: number;
}

function summarize(s: Scratch, samples: Sample[]): OperationResult {
  return {
    samples,
    failed_median: median(samples.map((x) => x.failed)),
    failed_max: Math.max(...samples.map((x) => x.failed)),
    window_ms_median: Object.fromEntries(s.instances.map((i) => [i.name, median(samples.map((x) => x.window_ms[i.name] ?? 0))])),
    max_latency_ms_median: median(samples.map((x) => x.max_latency_ms)),
    operation_ms_median: Math.round(median(samples.map((x) => x.operation_ms))),
  };
}

function table(s: Scratch, results: Record<Operation, OperationResult>, reps: number): string {
  const names = s.instances.map((i) => i.name);
  const header = ['operation', `failed (median of ${reps})`, 'failed (max)', ...names.map((n) => `502 window ${n} (ms)`), 'max latency (ms)', 'operation (ms)'];
  const rows = OPERATIONS.map((op) => {
    const r = results[op];
    return [op, String(r.failed_median), String(r.failed_max), ...names.map((n) => String(r.window_ms_median[n])), String(r.max_latency_ms_median), String(r.operation_ms_median)];
  });
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  preflight();
  const s = await createScratch(options.instances);
  scratch = s;
  log(`scratch directory ${s.dir}; ${options.instances} instances behind nginx on 127.0.0.1:${s.port}; ${options.reps} repetitions of ${options.durationS} s per operation`);
  const loadBefore = os.loadavg();
  const started = Date.now();
  startNginx(s);
  controller('start');
  const samples = Object.fromEntries(OPERATIONS.map((op) => [op, [] as Sample[]])) as unknown as Record<Operation, Sample[]>;
  for (let rep = 1; rep <= options.reps; rep += 1) {
    for (const op of OPERATIONS) {
      if (op === 'per-slot baseline') {
        // The baseline runs the same configs from its own runscripts: the controller's are stopped first.
        declare(s, 0);
        switchSlot = 0;
        controller('stop');
        for (const instance of s.instances) perSlot('start', instance);
        await sleep(500);
      }
      const sample = await measure(s, op, options.durationS);
      samples[op].push(sample);
      log(`rep ${rep}/${options.reps} ${op}: ${sample.failed} failed of ${sample.requests} (5xx logged ${sample.nginx_5xx}, socket errors ${sample.socket_errors}), windows ${JSON.stringify(sample.window_ms)} ms, max latency ${sample.max_latency_ms} ms, operation ${sample.operation_ms} ms`);
      if (op === 'per-slot baseline') {
        for (const instance of s.instances) perSlot('stop', instance);
        controller('start');
      }
      controller('status'); // every instance runs before the next operation (exit 0 only then)
      await sleep(500);
    }
  }
  const results = Object.fromEntries(OPERATIONS.map((op) => [op, summarize(s, samples[op])])) as Record<Operation, OperationResult>;
  const baseline = results['per-slot baseline'].failed_median;
  const targets = [
    { id: 'reload: 0 failed in every run', value: results.reload.failed_max, limit: 0, met: results.reload.failed_max === 0 },
    { id: 'slot switch: 0 failed in every run', value: results.switch.failed_max, limit: 0, met: results.switch.failed_max === 0 },
    { id: 'restart: at most 0.5 × the baseline (median)', value: results.restart.failed_median, limit: 0.5 * baseline, met: results.restart.failed_median <= 0.5 * baseline },
  ];
  const report = {
    meta: {
      command: `scripts/bench ${process.argv.slice(2).join(' ')}`.trim(),
      date: new Date().toISOString(),
      duration_s: Math.round((Date.now() - started) / 1000),
      reps: options.reps,
      instances: options.instances,
      load: `wrk -t2 -c16 -d${options.durationS}s, ${PACE_DELAY_MS} ms between requests per connection; PHP request ${REQUEST_MS} ms; pm static, 4 workers per instance; process_control_timeout = 10s`,
      loadavg_before: loadBefore.map((x) => Math.round(x * 100) / 100),
      loadavg_after: os.loadavg().map((x) => Math.round(x * 100) / 100),
      cpus: os.availableParallelism(),
    },
    results,
    targets,
  };
  fs.mkdirSync(path.dirname(options.json), { recursive: true });
  fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(table(s, results, options.reps));
  for (const t of targets) process.stdout.write(`target ${t.id}: ${t.value} (limit ${t.limit}) ${t.met ? 'met' : 'MISSED'}\n`);
  process.stdout.write(`load average before ${report.meta.loadavg_before.join(' ')}, after ${report.meta.loadavg_after.join(' ')}; ${report.meta.duration_s} s\n`);
  log(`results written to ${options.json}`);
}

main().then(
  () => {
    cleanUp();
    process.exit(0);
  },
  (error: Error) => {
    log(`failed: ${error.stack ?? error.message}`);
    cleanUp();
    process.exit(1);
  },
);
