// The harness of scripts/bench-supervisor: measures `php-fpm-multi supervise` on real php8.2-fpm
// instances in a scratch directory under /tmp:
//   - detection-to-serving after kill -9 of a master (from the kill to the moment the pidfile
//     names a new live master and its pool answers its ping over FastCGI): median and max over
//     K kills, at N = 1 (each kill after the master ran STABLE_AFTER_MS, so that no crash-loop
//     backoff applies) and at N = 32 (each kill a different instance);
//   - idle cost over 60 s at N = 32 and N = 128: CPU seconds per minute (utime + stime of the
//     supervisor from /proc/PID/stat) and its RSS;
//   - the heap before and after 500 crash/restart cycles at N = 128 (a preload, heap-probe.js,
//     writes process.memoryUsage() after a forced GC every second; only in that run).
// Prints a table and writes JSON (default bench-results/supervisor.json). Whatever it started is
// stopped at exit (SIGTERM to the supervisor, then SIGKILL of anything left in the scratch dir).
//
// Usage: scripts/bench-supervisor [--json FILE] [--kills K] [--idle-s S] [--cycles C] [--quick]
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findRoot } from './root.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = findRoot(HERE);
const CLI = path.join(ROOT, 'dist', 'cli.js');
const HEAP_PROBE = path.join(HERE, 'heap-probe.js');
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
const CLOCK_TICKS_PER_SECOND = 100;
/** The supervisor's STABLE_AFTER_MS (src/supervisor/policy.ts) and a margin. */
const STABLE_WAIT_MS = 10_500;
const SERVING_TIMEOUT_MS = 30_000;

interface Options {
  json: string;
  kills: number;
  idleSeconds: number;
  cycles: number;
  sizes: { detect: number[]; idle: number[]; heap: number };
  /** Only these parts (default all). */
  only: Set<string>;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    json: path.join(ROOT, 'bench-results', 'supervisor.json'), kills: 20, idleSeconds: 60, cycles: 500,
    sizes: { detect: [1, 32], idle: [32, 128], heap: 128 }, only: new Set(['detect', 'idle', 'heap']),
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--json') options.json = value();
    else if (arg === '--kills') options.kills = Number(value());
    else if (arg === '--idle-s') options.idleSeconds = Number(value());
    else if (arg === '--cycles') options.cycles = Number(value());
    else if (arg === '--quick') Object.assign(options, { kills: 3, idleSeconds: 5, cycles: 10, sizes: { detect: [1, 4], idle: [4], heap: 4 } });
    else if (arg.startsWith('--node-flag=')) continue;
    else if (arg === '--only') options.only = new Set(value().split(','));
    else if (arg === '--detect-sizes') options.sizes.detect = value().split(',').map(Number);
    else if (arg === '--idle-sizes') options.sizes.idle = value().split(',').map(Number);
    else if (arg === '--no-setup') continue;
    else throw new Error(`unknown option ${arg}; see the head of scripts/bench-lib/supervisor.ts`);
  }
  return options;
}

type PoolsModule = typeof import('../../src/php-fpm/pools.js');
type Pool = Parameters<PoolsModule['pingPool']>[1];
type Connector = Parameters<PoolsModule['pingPool']>[0];

interface Instance {
  name: string;
  config: string;
  socket: string;
}

interface Scratch {
  dir: string;
  instances: Instance[];
}

function createScratch(maxN: number): Scratch {
  const dir = fs.mkdtempSync('/tmp/php-fpm-multi-bench-sv-');
  fs.chmodSync(dir, 0o755);
  const instances: Instance[] = [];
  for (let k = 1; k <= maxN; k += 1) {
    const home = path.join(dir, `i${k}`);
    fs.mkdirSync(home, { mode: 0o755 });
    const config = path.join(home, 'php-fpm.conf');
    const socket = path.join(home, 'php-fpm.sock');
    fs.writeFileSync(config, [
      '[global]', `error_log = ${path.join(home, 'error.log')}`, '',
      `[i${k}]`, 'user = www-data', 'group = www-data', `listen = ${socket}`, 'pm = static', 'pm.max_children = 1', 'ping.path = /ping', '',
    ].join('\n'));
    instances.push({ name: `i${k}`, config, socket });
  }
  return { dir, instances };
}

/** A declaration of the first n instances with its own run directory. restart_limit: a bench kills on purpose. */
function declare(scratch: Scratch, n: number, label: string): { decl: string; runDir: string } {
  const runDir = path.join(scratch.dir, `run-${label}`);
  const decl = path.join(scratch.dir, `php-fpm-${label}`);
  const lines = scratch.instances.slice(0, n).map((i) => `FPM_slot_${i.name}="slot=8.2 config=${i.config}"`);
  fs.writeFileSync(decl, `FPM_defaults="restart_limit=1000/300"\n${lines.join('\n')}\nFPM_run_dir=${runDir}\n`);
  return { decl, runDir };
}

interface Running {
  child: ChildProcess;
  exited: Promise<number | null>;
  events: () => string;
}

/** Extra node flags for every supervisor of the run (an experiment: --node-flag=--max-semi-space-size=1). */
const NODE_FLAGS: string[] = process.argv.filter((arg) => arg.startsWith('--node-flag=')).map((arg) => arg.slice('--node-flag='.length));

function startSupervisor(decl: string, nodeArgs: readonly string[] = [], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs, CLI, '--conf', decl, 'supervise'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...ENV, ...env } });
  let events = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    events += chunk.toString();
    if (events.length > 1_000_000) events = events.slice(-500_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  running.add(child);
  void exited.then(() => running.delete(child));
  return { child, exited, events: () => events };
}

const running = new Set<ChildProcess>();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readPid(runDir: string, name: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(runDir, `${name}.pid`), 'utf8'));
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** utime + stime of a process in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

async function waitFor<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs = SERVING_TIMEOUT_MS, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The System the pings connect through (set once the compiled modules are loaded). */
let connector: Connector;

function poolOf(instance: Instance): Pool {
  return { name: instance.name, listen: instance.socket, pingPath: '/ping', pingResponse: 'pong' } as Pool;
}

/** The pidfile names a live master other than `old`, and its pool answers its ping. */
async function serving(pools: PoolsModule, runDir: string, instance: Instance, old: number | null): Promise<number | null> {
  const pid = readPid(runDir, instance.name);
  if (pid === null || pid === old || !isAlive(pid)) return null;
  try {
    await pools.pingPool(connector, poolOf(instance), 500);
    return pid;
  } catch {
    return null;
  }
}

async function waitAllServing(pools: PoolsModule, runDir: string, instances: readonly Instance[]): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  for (const instance of instances) pids.set(instance.name, await waitFor(`${instance.name} serving`, () => serving(pools, runDir, instance, null), 120_000, 20));
  return pids;
}

/** kill -9 of the master, then the time until a new master serves. */
async function killAndTime(pools: PoolsModule, runDir: string, instance: Instance, pid: number): Promise<{ ms: number; pid: number }> {
  const start = process.hrtime.bigint();
  process.kill(pid, 'SIGKILL');
  const next = await waitFor(`${instance.name} serving again`, () => serving(pools, runDir, instance, pid));
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, pid: next };
}

async function stopSupervisor(sup: Running): Promise<number | null> {
  sup.child.kill('SIGTERM');
  return sup.exited;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function measureDetection(pools: PoolsModule, scratch: Scratch, n: number, kills: number) {
  const { decl, runDir } = declare(scratch, n, `detect-${n}`);
  const sup = startSupervisor(decl);
  try {
    const instances = scratch.instances.slice(0, n);
    const pids = await waitAllServing(pools, runDir, instances);
    const samples: number[] = [];
    let lastStart = new Map<string, number>(instances.map((i) => [i.name, Date.now()]));
    for (let k = 0; k < kills; k += 1) {
      const instance = instances[k % n]!;
      // A master killed again before it ran STABLE_AFTER_MS would be a crash loop (backoff).
      const ranMs = Date.now() - lastStart.get(instance.name)!;
      if (ranMs < STABLE_WAIT_MS) await sleep(STABLE_WAIT_MS - ranMs);
      // A random phase against the supervisor's 200 ms poll: killing right after the previous
      // restart would always land just after a poll and measure the worst case every time.
      await sleep(Math.random() * 250);
      const { ms, pid } = await killAndTime(pools, runDir, instance, pids.get(instance.name)!);
      samples.push(ms);
      pids.set(instance.name, pid);
      lastStart = new Map(lastStart).set(instance.name, Date.now());
      process.stderr.write(`  N=${n} kill ${k + 1}/${kills} (${instance.name}): ${round(ms)} ms\n`);
    }
    return { n, kills, median_ms: round(median(samples)), max_ms: round(Math.max(...samples)), samples_ms: samples.map((s) => round(s)) };
  } finally {
    await stopSupervisor(sup);
  }
}

async function measureIdle(pools: PoolsModule, scratch: Scratch, n: number, seconds: number) {
  const { decl, runDir } = declare(scratch, n, `idle-${n}`);
  const sup = startSupervisor(decl);
  try {
    await waitAllServing(pools, runDir, scratch.instances.slice(0, n));
    await sleep(2_000); // the start-up batch and its state file are done
    const pid = sup.child.pid!;
    const before = cpuTicks(pid);
    await sleep(seconds * 1000);
    const cpuSeconds = (cpuTicks(pid) - before) / CLOCK_TICKS_PER_SECOND;
    return { n, seconds, cpu_s_per_min: round((cpuSeconds * 60) / seconds, 3), rss_mib: round(rssKiB(pid) / 1024) };
  } finally {
    await stopSupervisor(sup);
  }
}

async function measureHeap(pools: PoolsModule, scratch: Scratch, n: number, cycles: number) {
  process.stderr.write(`heap over ${cycles} crash/restart cycles at N=${n}\n`);
  const { decl, runDir } = declare(scratch, n, `heap-${n}`);
  const probeFile = path.join(scratch.dir, 'heap.json');
  const sup = startSupervisor(decl, ['--expose-gc', '--import', pathToFileURL(HEAP_PROBE).href], { PHP_FPM_MULTI_HEAP_PROBE: probeFile });
  const readHeap = async (): Promise<{ heapUsed: number; rss: number }> => {
    const mark = Date.now();
    // The probe writes every second: wait for a sample taken after now.
    return waitFor('a heap sample', () => {
      try {
        const sample = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { atMs: number; heapUsed: number; rss: number };
        return sample.atMs > mark ? sample : null;
      } catch {
        return null;
      }
    }, 10_000, 100);
  };
  try {
    const instances = scratch.instances.slice(0, n);
    const pids = await waitAllServing(pools, runDir, instances);
    const before = await readHeap();
    const started = Date.now();
    for (let k = 0; k < cycles; k += 1) {
      const instance = instances[k % n]!;
      const { pid } = await killAndTime(pools, runDir, instance, pids.get(instance.name)!);
      pids.set(instance.name, pid);
      if ((k + 1) % 50 === 0) process.stderr.write(`  heap: ${k + 1}/${cycles} crash/restart cycles\n`);
    }
    const after = await readHeap();
    const restarts = (sup.events().match(/: restarted: /g) ?? []).length;
    return {
      n, cycles, seconds: round((Date.now() - started) / 1000), restarts_seen_in_tail_of_events: restarts,
      heap_used_before_mib: round(before.heapUsed / 2 ** 20, 2), heap_used_after_mib: round(after.heapUsed / 2 ** 20, 2),
      rss_before_mib: round(before.rss / 2 ** 20), rss_after_mib: round(after.rss / 2 ** 20),
    };
  } finally {
    await stopSupervisor(sup);
  }
}

function cleanUp(scratch: Scratch | null): void {
  for (const child of running) child.kill('SIGKILL');
  if (scratch === null) return;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(scratch.dir)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone
    }
  }
  fs.rmSync(scratch.dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const pools = (await import(pathToFileURL(path.join(ROOT, 'build', 'bench', 'src', 'php-fpm', 'pools.js')).href)) as PoolsModule;
  const { createRealSystem } = (await import(pathToFileURL(path.join(ROOT, 'build', 'bench', 'src', 'process', 'system.js')).href)) as typeof import('../../src/process/system.js');
  connector = createRealSystem();
  const maxN = Math.max(...options.sizes.detect, ...options.sizes.idle, options.sizes.heap);
  let scratch: Scratch | null = null;
  const onSignal = (): void => {
    cleanUp(scratch);
    process.exitCode = 130;
    process.exit();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const began = Date.now();
  try {
    scratch = createScratch(maxN);
    const detection = [];
    for (const n of options.only.has('detect') ? options.sizes.detect : []) {
      process.stderr.write(`detection-to-serving at N=${n}\n`);
      detection.push(await measureDetection(pools, scratch, n, options.kills));
    }
    const idle = [];
    for (const n of options.only.has('idle') ? options.sizes.idle : []) {
      process.stderr.write(`idle cost at N=${n} over ${options.idleSeconds} s\n`);
      idle.push(await measureIdle(pools, scratch, n, options.idleSeconds));
    }
    const heap = options.only.has('heap') ? await measureHeap(pools, scratch, options.sizes.heap, options.cycles) : null;
    const report = {
      when: new Date().toISOString(), seconds: round((Date.now() - began) / 1000), cpus: (await import('node:os')).availableParallelism(),
      load_average: (await import('node:os')).loadavg().map((l) => round(l, 2)), detection, idle, heap,
    };
    fs.mkdirSync(path.dirname(options.json), { recursive: true });
    fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write('detection-to-serving after kill -9 (ms)\n');
    for (const d of detection) process.stdout.write(`  N=${String(d.n).padEnd(4)} kills=${d.kills}  median ${d.median_ms}  max ${d.max_ms}\n`);
    process.stdout.write('idle cost\n');
    for (const i of idle) process.stdout.write(`  N=${String(i.n).padEnd(4)} ${i.cpu_s_per_min} CPU s/min  RSS ${i.rss_mib} MiB\n`);
    if (heap !== null) process.stdout.write(`heap at N=${heap.n} over ${heap.cycles} crash/restart cycles (${heap.seconds} s): ` +
      `${heap.heap_used_before_mib} → ${heap.heap_used_after_mib} MiB used, RSS ${heap.rss_before_mib} → ${heap.rss_after_mib} MiB\n`);
    process.stdout.write(`written: ${options.json}\n`);
  } finally {
    cleanUp(scratch);
  }
}

await main();
