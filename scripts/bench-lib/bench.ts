// The harness of scripts/bench: sets up N real php8.2-fpm instances in a scratch directory under
// /tmp and measures, in one run and side by side, the controller (node dist/cli.js) against the
// per-slot baseline (scripts/bench-lib/per-slot.sh: one runscript per slot with
// start-stop-daemon, in sequence) and against the floor (scripts/bench-lib/floor.sh for start
// and stop, `node -e 0` for status and reading). Each figure is the median of --reps repetitions
// (5 by default) after one warm-up; the methods take turns within each repetition. Between
// repetitions every instance is verified gone; at exit, even on failure or Ctrl-C, whatever this
// run started is stopped and the scratch directory removed.
//
// Usage: scripts/bench [--quick] [--json FILE] [--reps K] [--sizes 1,8,32] [--profile]
// (scripts/bench builds the controller, compiles this harness into build/bench/ and runs it).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRoot } from './root.js';
import type { Profile } from './profile.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = findRoot(HERE);
/** The shell scripts of the baseline and the floor (not compiled). */
const LIB = path.join(ROOT, 'scripts', 'bench-lib');
/** The compiled memory probe, next to this file. */
const HWM = path.join(HERE, 'hwm.js');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const FPM = '/usr/sbin/php-fpm8.2';
const SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ENV = { PATH: SEARCH_PATH, LANG: 'C' };
const NODE = process.execPath;

const FULL_SIZES = [1, 8, 16, 32, 128];
const QUICK_SIZES = [1, 4];
const READING_INSTANCES = 1000;
/** Sizes the issue's targets name; a --quick run uses its largest size instead. */
const TARGET_SIZES = { status: 32, start: 16, stop: 16, memory: 128 };
const LIMITS = { statusVsNode: 1.25, vsBaseline: 0.5, memoryMiB: 64, linearExcess: 0.25 };

type Env = Readonly<Record<string, string>>;

interface Options {
  quick: boolean;
  json: string;
  reps: number;
  sizes: number[];
  profile: boolean;
}

interface ScratchInstance {
  name: string;
  config: string;
  pidfile: string;
}

export interface Scratch {
  dir: string;
  tag: string;
  runDir: string;
  instances: ScratchInstance[];
  decl: Map<number, string>;
  list: Map<number, string>;
}

/** Processes of this run by role. */
interface Found {
  masters: number[];
  workers: number[];
  others: number[];
}

/** A figure: the median of its samples, and the samples. Rounded; NaN (JSON null) when not finite. */
interface Summary {
  median_ms: number;
  min_ms: number;
  max_ms: number;
  samples_ms: number[];
}

const METHODS = ['controller', 'baseline', 'floor'] as const;
type Method = (typeof METHODS)[number];
type Samples = Record<Method, number[]>;
/** One timed run of a command; the label names it in errors. */
type Timed = (label: string) => Promise<number>;
type Command = 'status' | 'start' | 'stop';

interface Results {
  status: Record<number, Record<Method, Summary>>;
  start: Record<number, Record<Method, Summary>>;
  stop: Record<number, Record<Method, Summary>>;
  node_e0: Record<number, Summary>;
  reading?: { instances: number; controller: Summary; floor: Summary; sh_source: Summary };
  status_decomposition?: {
    n: number; node_e0: Summary; version: Summary; status: Summary; status_code_cache: Summary;
    node_start_ms: number; module_load_ms: number; compile_saved_by_code_cache_ms: number; work_ms: number;
  };
}

interface LinearityEntry {
  slope_ms_per_instance: number;
  intercept_ms: number;
  r2: number;
  fitted_on?: number[];
  slope_small_ms_per_instance?: number;
  predicted_at_max_ms?: number;
  measured_at_max_ms?: number;
  max_n?: number;
  excess_over_linear?: number;
}
type Linearity = Record<Command, Record<Method, LinearityEntry>>;

interface Target {
  id: string;
  description: string;
  n: number;
  value: number;
  limit: number;
  unit: string;
  met: boolean;
  over_by: number;
  value_over_limit: number;
}

type Memory = Awaited<ReturnType<typeof measureMemory>>;

interface Report {
  meta: {
    command: string;
    quick: boolean;
    reps: number;
    warm_up: number;
    sizes: number[];
    date: string;
    duration_s: number;
    controller: string;
    commit: string | null;
    src_modified: boolean | null;
    loadavg_before: string;
    loadavg_after: string | null;
    environment: string;
    concurrency_note: string;
  };
  machine: ReturnType<typeof machine>;
  results: Results;
  ratios: ReturnType<typeof ratios>;
  linearity: Linearity;
  memory: Memory;
  targets: Target[];
  profile?: Profile;
}

// ---------------------------------------------------------------------------------------------
// Options

function usage(): string {
  return `Usage: scripts/bench [--quick] [--json FILE] [--reps K] [--sizes N,N,…] [--profile] [--no-setup]

  --quick       a small run (N = ${QUICK_SIZES.join(', ')}; 5 repetitions), as the test suite uses
  --json FILE   where to write the results (default bench-results/bench.json)
  --reps K      repetitions per figure after one warm-up (default 5, at least 5)
  --sizes LIST  numbers of instances (default ${FULL_SIZES.join(', ')})
  --profile     also profile the controller (status at N=32, start and stop at N=16): module
                loading, CPU time by module, syscalls (strace, when installed), spawns
  --no-setup    do not run scripts/setup first (scripts/bench only)
`;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Omit<Options, 'sizes'> & { sizes: number[] | null } = {
    quick: false, json: path.join(ROOT, 'bench-results', 'bench.json'), reps: 5, sizes: null, profile: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--json') options.json = path.resolve(value());
    else if (arg === '--reps') options.reps = Number(value());
    else if (arg === '--sizes') options.sizes = value().split(',').map(Number);
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--no-setup') continue;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${usage()}`);
  }
  if (!Number.isInteger(options.reps) || options.reps < 5) throw new Error('--reps must be an integer of at least 5 (each figure is a median of at least 5)');
  const sizes = options.sizes ?? (options.quick ? QUICK_SIZES : FULL_SIZES);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 1000)) throw new Error('--sizes: integers from 1 to 1000');
  return { ...options, sizes: [...new Set(sizes)].sort((a, b) => a - b) };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const log = (text: string): void => void process.stderr.write(`bench: ${text}\n`);
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/** Rounded to `digits`; NaN when not finite (JSON.stringify writes it as null). */
const round = (x: number, digits = 1): number => (!Number.isFinite(x) ? NaN : Math.round(x * 10 ** digits) / 10 ** digits);
const summary = (samples: readonly number[]): Summary => ({
  median_ms: round(median(samples), 2),
  min_ms: round(Math.min(...samples), 2),
  max_ms: round(Math.max(...samples), 2),
  samples_ms: samples.map((x) => round(x, 2)),
});
const summaries = (samples: Samples): Record<Method, Summary> => ({
  controller: summary(samples.controller), baseline: summary(samples.baseline), floor: summary(samples.floor),
});
const rotate = <T>(list: readonly T[], k: number): T[] => list.map((_, i) => list[(i + k) % list.length]!);

function findProgram(name: string): string | null {
  for (const dir of SEARCH_PATH.split(':')) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function firstLine(program: string, args: readonly string[]): string {
  const result = spawnSync(program, args, { encoding: 'utf8', env: ENV });
  return (`${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n')[0] ?? '').trim();
}

// ---------------------------------------------------------------------------------------------
// Preconditions: the real programs, loudly

function preflight(): string {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('run as root: the php-fpm pools run as www-data, which only root can switch to');
  if (!fs.existsSync(FPM)) problems.push(`${FPM} is missing: run scripts/setup (it installs Debian's php8.2-fpm)`);
  const ssd = findProgram('start-stop-daemon');
  if (ssd === null) problems.push('start-stop-daemon is missing (Debian: package dpkg): the per-slot baseline needs it');
  else {
    const help = spawnSync(ssd, ['--help'], { encoding: 'utf8', env: ENV }).stdout ?? '';
    for (const flag of ['--status', '--retry', '--pidfile', '--exec']) {
      if (!help.includes(flag)) problems.push(`${ssd} does not support ${flag}: the per-slot baseline needs dpkg's or OpenRC's start-stop-daemon`);
    }
  }
  if (!fs.existsSync(CLI)) problems.push(`${CLI} is missing: run scripts/setup (it builds the controller)`);
  try {
    spawnSync('id', ['www-data'], { env: ENV }).status === 0 || problems.push('user www-data is missing');
  } catch {
    problems.push('cannot run id');
  }
  if (problems.length > 0 || ssd === null) throw new Error(`cannot benchmark:\n  ${problems.join('\n  ')}`);
  return ssd;
}

// ---------------------------------------------------------------------------------------------
// The scratch directory: configs, declaration files, slot lists

function createScratch(maxN: number): Scratch {
  const dir = fs.mkdtempSync('/tmp/php-fpm-multi-bench-');
  fs.chmodSync(dir, 0o755); // www-data workers reach their sockets through it
  const tag = `pfmb${path.basename(dir).replace(/[^A-Za-z0-9]/g, '').slice(-6)}`;
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.chmodSync(runDir, 0o755);
  const instances: ScratchInstance[] = [];
  for (let k = 1; k <= maxN; k += 1) {
    const home = path.join(dir, `i${k}`);
    fs.mkdirSync(home, { mode: 0o755 });
    const config = path.join(home, 'php-fpm.conf');
    fs.writeFileSync(
      config,
      [
        '[global]', `error_log = ${path.join(home, 'error.log')}`, '',
        `[${tag}_${k}]`, 'user = www-data', 'group = www-data', `listen = ${path.join(home, 'php-fpm.sock')}`,
        'pm = static', 'pm.max_children = 1', '',
      ].join('\n'),
    );
    instances.push({ name: String(k), config, pidfile: path.join(runDir, `${k}.pid`) });
  }
  return { dir, tag, runDir, instances, decl: new Map(), list: new Map() };
}

/** The declaration file and the slot list (for the shell scripts) of the first n instances. */
function filesFor(scratch: Scratch, n: number): { decl: string; list: string } {
  let decl = scratch.decl.get(n);
  let list = scratch.list.get(n);
  if (decl === undefined || list === undefined) {
    const chosen = scratch.instances.slice(0, n);
    decl = path.join(scratch.dir, `php-fpm-${n}`);
    fs.writeFileSync(decl, `${chosen.map((i) => `FPM_slot_${i.name}="slot=8.2 config=${i.config}"`).join('\n')}\nFPM_run_dir=${scratch.runDir}\n`);
    list = path.join(scratch.dir, `slots-${n}`);
    fs.writeFileSync(list, chosen.map((i) => `${i.name} ${i.config} ${i.pidfile}\n`).join(''));
    scratch.decl.set(n, decl);
    scratch.list.set(n, list);
  }
  return { decl, list };
}

/** 1,000 declared instances for the reading figure, in both forms, each config a real file. */
function createReadingDeclaration(scratch: Scratch): string {
  const dir = path.join(scratch.dir, 'reading');
  fs.mkdirSync(dir);
  const lines = ['# php-fpm-multi bench: 1,000 instances', 'FPM_defaults="slot=8.2 stop_timeout=20"'];
  for (let k = 1; k <= READING_INSTANCES; k += 1) {
    const config = path.join(dir, `r${k}.conf`);
    fs.writeFileSync(config, `[global]\n\n[r${k}]\nlisten = ${dir}/r${k}.sock\npm = static\npm.max_children = 1\n`);
    lines.push(k % 2 === 0
      ? `FPM_slot_r${k}="config=${config} 'env=SITE=site ${k}'"`
      : `FPM_slot_r${k}=(\n    "config=${config}"   # array form\n    "nice=5"\n)`);
  }
  lines.push(`FPM_run_dir=${path.join(scratch.dir, 'reading-run')}`, '');
  const decl = path.join(dir, 'php-fpm');
  fs.writeFileSync(decl, lines.join('\n'));
  return decl;
}

// ---------------------------------------------------------------------------------------------
// Processes of this run: found by title, verified, cleaned

function scanOurs(scratch: Scratch): Found {
  const found: Found = { masters: [], workers: [], others: [] };
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[1-9][0-9]*$/.test(entry)) continue;
    let cmdline;
    let stat;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') continue;
    const argv = cmdline.replace(/\0+$/, '').split('\0');
    const title = argv.join(' ');
    const pid = Number(entry);
    const isMasterTitle = title.startsWith('php-fpm: master process (') && title.includes(`${scratch.dir}/`);
    // A daemonized master leads its session; a child with the master's title is a worker that
    // has not renamed itself yet.
    if (isMasterTitle && Number(fields[3]) === pid) found.masters.push(pid);
    else if (isMasterTitle || title.startsWith(`php-fpm: pool ${scratch.tag}_`)) found.workers.push(pid);
    else if (argv[0] === FPM && title.includes(`${scratch.dir}/`)) found.others.push(pid); // launchers, config tests
  }
  return found;
}

const countOurs = (found: Found): number => found.masters.length + found.workers.length + found.others.length;

function leftovers(scratch: Scratch): { found: Found; files: string[] } {
  const files = fs.readdirSync(scratch.runDir).filter((f) => f.endsWith('.pid') || f.endsWith('.record.json'));
  return { found: scanOurs(scratch), files };
}

/** Nothing of this run may run between repetitions, and no pidfile or record may remain. */
function verifyClean(scratch: Scratch, what: string): void {
  for (let waited = 0; ; waited += 20) {
    const { found, files } = leftovers(scratch);
    if (countOurs(found) === 0 && files.length === 0) return;
    if (waited >= 2000) {
      throw new Error(`${what} left instances behind: masters ${found.masters.join(' ') || '-'}, workers ${found.workers.join(' ') || '-'}, other php-fpm ${found.others.join(' ') || '-'}, files ${files.join(' ') || '-'}`);
    }
    sleepSync(20);
  }
}

function describePid(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const title = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replaceAll('\0', ' ');
    return `pid ${pid} state ${fields[0]} ppid ${fields[1]} session ${fields[3]} started at tick ${fields[19]}: ${title}`;
  } catch {
    return `pid ${pid} (gone)`;
  }
}

/** After a start, every instance must run: n masters of this scratch, each named by its pidfile. */
function verifyRunning(scratch: Scratch, n: number, what: string): void {
  const found = scanOurs(scratch);
  const named = scratch.instances.slice(0, n).filter((i) => {
    try {
      return found.masters.includes(Number(fs.readFileSync(i.pidfile, 'utf8').trim()));
    } catch {
      return false;
    }
  });
  if (found.masters.length !== n || named.length !== n) {
    throw new Error(`${what}: expected ${n} running masters named by their pidfiles, found ${found.masters.length} masters, ${named.length} named:\n    ${found.masters.map(describePid).join('\n    ')}`);
  }
}

/** Stops whatever this run started (SIGQUIT, then SIGKILL), removes the scratch directory. Sync. */
function cleanUp(scratch: Scratch | null): void {
  if (scratch === null) return;
  const signal = (pids: readonly number[], sig: NodeJS.Signals): void => pids.forEach((pid) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  });
  let found = scanOurs(scratch);
  if (countOurs(found) > 0) {
    signal(found.masters, 'SIGQUIT');
    for (let waited = 0; waited < 3000 && countOurs(found) > 0; waited += 20) {
      sleepSync(20);
      found = scanOurs(scratch);
    }
    for (let attempt = 0; attempt < 50 && countOurs(found) > 0; attempt += 1) {
      signal([...found.masters, ...found.workers, ...found.others], 'SIGKILL');
      sleepSync(20);
      found = scanOurs(scratch);
    }
    if (countOurs(found) > 0) log(`warning: could not end pids ${[...found.masters, ...found.workers, ...found.others].join(' ')}`);
  }
  fs.rmSync(scratch.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Timing one command

/**
 * Runs a command to its exit and returns its wall time in ms (spawn to exit, as an admin waits
 * for it). stdout goes to /dev/null, stderr to a file shown on failure.
 */
function timed(
  scratch: Scratch, label: string, program: string, args: readonly string[],
  { expectCodes = [0], env = ENV }: { expectCodes?: readonly number[]; env?: Env } = {},
): Promise<number> {
  const errFile = path.join(scratch.dir, 'stderr.txt');
  const fd = fs.openSync(errFile, 'w');
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', fd], env, cwd: scratch.dir });
    fs.closeSync(fd);
    child.on('error', (error) => reject(new Error(`${label}: cannot run ${program}: ${error.message}`)));
    child.on('exit', (code, sig) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== null && expectCodes.includes(code)) resolve(ms);
      else {
        const stderr = fs.readFileSync(errFile, 'utf8').trim().split('\n').slice(-15).join('\n    ');
        reject(new Error(`${label}: exited with ${code ?? sig}, expected ${expectCodes.join(' or ')}\n    ${stderr}`));
      }
    });
  });
}

function methods(scratch: Scratch, ssd: string, n: number): { node: Timed } & Record<Command, Record<Method, Timed>> {
  const { decl, list } = filesFor(scratch, n);
  const env = { ...ENV, FPM, SSD: ssd };
  const controller = (command: Command): Timed => (label) => timed(scratch, label, NODE, [CLI, '--conf', decl, command], { env });
  return {
    node: (label) => timed(scratch, label, NODE, ['-e', '0']),
    start: {
      controller: controller('start'),
      baseline: (label) => timed(scratch, label, '/bin/sh', [path.join(LIB, 'per-slot.sh'), 'start', list], { env }),
      floor: (label) => timed(scratch, label, '/bin/sh', [path.join(LIB, 'floor.sh'), 'start', list], { env }),
    },
    stop: {
      controller: controller('stop'),
      baseline: (label) => timed(scratch, label, '/bin/sh', [path.join(LIB, 'per-slot.sh'), 'stop', list], { env }),
      floor: (label) => timed(scratch, label, '/bin/sh', [path.join(LIB, 'floor.sh'), 'stop', list], { env }),
    },
    status: {
      controller: controller('status'),
      baseline: (label) => timed(scratch, label, '/bin/sh', [path.join(LIB, 'per-slot.sh'), 'status', list], { env }),
      floor: (label) => timed(scratch, label, NODE, ['-e', '0']),
    },
  };
}

/** start then stop of n instances by each method in turn; returns samples per method. */
async function measureStartStop(scratch: Scratch, ssd: string, n: number, reps: number): Promise<{ start: Samples; stop: Samples; node: number[] }> {
  const m = methods(scratch, ssd, n);
  const samples = {
    start: { controller: [], baseline: [], floor: [] } as Samples, stop: { controller: [], baseline: [], floor: [] } as Samples, node: [] as number[],
  };
  for (let rep = 0; rep <= reps; rep += 1) {
    const warmUp = rep === 0;
    for (const method of rotate(METHODS, rep)) {
      const label = `N=${n} ${method} rep ${rep}`;
      const startMs = await m.start[method](`start ${label}`);
      verifyRunning(scratch, n, `start ${label}`);
      const stopMs = await m.stop[method](`stop ${label}`);
      verifyClean(scratch, `stop ${label}`);
      if (!warmUp) {
        samples.start[method].push(startMs);
        samples.stop[method].push(stopMs);
      }
    }
    const nodeMs = await m.node(`node -e 0 N=${n} rep ${rep}`);
    if (!warmUp) samples.node.push(nodeMs);
  }
  return samples;
}

/** status of n running instances by each method in turn (the floor is `node -e 0`). */
/**
 * What status costs, taken apart, timed with the other methods in the same repetitions:
 * `node -e 0` (node's start), `node dist/cli.js --version` (node plus reading, compiling and
 * running the bundle's top level: the module load), and status through the installed command's
 * code-cache loader (scripts/code-cache/, the cache written as scripts/install.sh does), whose
 * difference to plain status is the compile time V8's cache saves.
 */
type DecompositionMethod = 'version' | 'code_cache';
const DECOMPOSITION: readonly DecompositionMethod[] = ['version', 'code_cache'];

function decompositionMethods(scratch: Scratch, n: number): Record<DecompositionMethod, Timed> {
  const { decl } = filesFor(scratch, n);
  const dir = path.join(scratch.dir, 'code-cache');
  const controller = path.join(dir, 'php-fpm-multi.cjs');
  if (!fs.existsSync(controller)) {
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.copyFileSync(CLI, controller);
    fs.writeFileSync(path.join(dir, 'empty'), `FPM_run_dir=${path.join(dir, 'run')}\n`);
    const written = spawnSync(NODE, [path.join(ROOT, 'scripts', 'code-cache', 'write.cjs'), controller, path.join(dir, 'empty')], { env: ENV, encoding: 'utf8' });
    if (written.status !== 0) throw new Error(`writing the code cache failed: ${written.stderr}`);
  }
  const loader = fs.readFileSync(path.join(ROOT, 'scripts', 'code-cache', 'loader.js'), 'utf8');
  return {
    version: (label) => timed(scratch, label, NODE, [CLI, '--version']),
    code_cache: (label) => timed(scratch, label, NODE, ['-e', loader, controller, '--conf', decl, 'status'], { env: { ...ENV, FPM } }),
  };
}

async function measureStatus(scratch: Scratch, ssd: string, n: number, reps: number, decompose = false): Promise<Samples & { decomposition?: Record<DecompositionMethod, number[]> }> {
  const m = methods(scratch, ssd, n);
  await m.start.controller(`status N=${n}: starting the instances`);
  verifyRunning(scratch, n, `status N=${n}: start`);
  const samples: Samples & { decomposition?: Record<DecompositionMethod, number[]> } = { controller: [], baseline: [], floor: [] };
  const extra = decompose ? decompositionMethods(scratch, n) : null;
  if (decompose) samples.decomposition = { version: [], code_cache: [] };
  try {
    for (let rep = 0; rep <= reps; rep += 1) {
      for (const method of rotate([...METHODS, ...(extra === null ? [] : DECOMPOSITION)], rep)) {
        if (method === 'version' || method === 'code_cache') {
          const ms = await extra![method](`status N=${n} ${method} rep ${rep}`);
          if (rep > 0) samples.decomposition![method].push(ms);
          continue;
        }
        const ms = await m.status[method](`status N=${n} ${method} rep ${rep}`);
        if (rep > 0) samples[method].push(ms);
      }
    }
  } finally {
    await m.stop.controller(`status N=${n}: stopping the instances`);
    verifyClean(scratch, `status N=${n}: stop`);
  }
  return samples;
}

type ReadingMethod = 'controller' | 'floor' | 'sh_source';

async function measureReading(scratch: Scratch, decl: string, reps: number): Promise<Record<ReadingMethod, number[]>> {
  const samples: Record<ReadingMethod, number[]> = { controller: [], floor: [], sh_source: [] };
  const run: Record<ReadingMethod, Timed> = {
    controller: (label) => timed(scratch, label, NODE, [CLI, '--conf', decl, '--json', 'list']),
    floor: (label) => timed(scratch, label, NODE, ['-e', '0']),
    // What OpenRC does with a conf.d file: /bin/sh sources it (the string form only; dash
    // refuses arrays, so this reference sources the string-form lines).
    sh_source: (label) => timed(scratch, label, '/bin/sh', ['-c', `. "$1"`, 'sh', `${decl}.posix`]),
  };
  fs.writeFileSync(`${decl}.posix`, fs.readFileSync(decl, 'utf8').split('\n').filter((l) => /^FPM_[A-Za-z0-9_]+="/.test(l)).join('\n'));
  for (let rep = 0; rep <= reps; rep += 1) {
    for (const method of rotate(['controller', 'floor', 'sh_source'] as const, rep)) {
      const ms = await run[method](`reading ${method} rep ${rep}`);
      if (rep > 0) samples[method].push(ms);
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// Peak memory of the controller

async function peakKiB(scratch: Scratch, label: string, args: readonly string[], env: Env = ENV): Promise<number> {
  const hwm = path.join(scratch.dir, 'hwm.txt');
  fs.rmSync(hwm, { force: true });
  await timed(scratch, label, NODE, ['--import', `file://${HWM}`, CLI, ...args], { env: { ...env, BENCH_HWM_FILE: hwm } });
  const kib = Number(fs.readFileSync(hwm, 'utf8'));
  if (!Number.isInteger(kib) || kib <= 0) throw new Error(`${label}: no VmHWM recorded`);
  return kib;
}

/** GNU time's %M: ru_maxrss from wait4(), the max over the controller AND the children it waited for. */
async function gnuTimeKiB(scratch: Scratch, label: string, args: readonly string[]): Promise<number | null> {
  const time = '/usr/bin/time';
  if (!fs.existsSync(time) || !firstLine(time, ['--version']).includes('GNU')) return null;
  const out = path.join(scratch.dir, 'time.txt');
  await timed(scratch, label, time, ['-f', '%M', '-o', out, NODE, CLI, ...args]);
  return Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
}

async function measureMemory(scratch: Scratch, n: number, readingDecl: string, cycles: number) {
  const { decl } = filesFor(scratch, n);
  const kib: Record<'start' | 'status' | 'stop' | 'list_1000', number[]> = { start: [], status: [], stop: [], list_1000: [] };
  for (let cycle = 0; cycle < cycles; cycle += 1) {
    kib.start.push(await peakKiB(scratch, `memory start N=${n}`, ['--conf', decl, 'start']));
    verifyRunning(scratch, n, `memory start N=${n}`);
    kib.status.push(await peakKiB(scratch, `memory status N=${n}`, ['--conf', decl, 'status']));
    kib.stop.push(await peakKiB(scratch, `memory stop N=${n}`, ['--conf', decl, 'stop']));
    verifyClean(scratch, `memory stop N=${n}`);
  }
  kib.list_1000.push(await peakKiB(scratch, 'memory list --json 1000', ['--conf', readingDecl, '--json', 'list']));
  const gnu = {
    start: await gnuTimeKiB(scratch, `GNU time start N=${n}`, ['--conf', decl, 'start']),
    status: await gnuTimeKiB(scratch, `GNU time status N=${n}`, ['--conf', decl, 'status']),
    stop: await gnuTimeKiB(scratch, `GNU time stop N=${n}`, ['--conf', decl, 'stop']),
  };
  verifyClean(scratch, `GNU time stop N=${n}`);
  const nodeKiB = await peakKiBOfNode(scratch);
  const peak = Math.max(...kib.start, ...kib.status, ...kib.stop);
  return {
    instances: n,
    method: 'VmHWM of /proc/self/status, written at exit by a preloaded module (node --import of scripts/bench-lib/hwm.ts, compiled): the controller process alone',
    start_kib: Math.max(...kib.start),
    status_kib: Math.max(...kib.status),
    stop_kib: Math.max(...kib.stop),
    list_1000_kib: Math.max(...kib.list_1000),
    peak_kib: peak,
    peak_mib: round(peak / 1024, 1),
    node_e0_kib: nodeKiB,
    gnu_time_maxrss_kib: gnu,
    gnu_time_note: "GNU time's %M is wait4()'s ru_maxrss: the largest of the controller and every child it waited for (php-fpm config tests and launchers), so it can exceed the controller's own peak",
  };
}

async function peakKiBOfNode(scratch: Scratch): Promise<number> {
  const hwm = path.join(scratch.dir, 'hwm.txt');
  await timed(scratch, 'memory node -e 0', NODE, ['--import', `file://${HWM}`, '-e', '0'], { env: { ...ENV, BENCH_HWM_FILE: hwm } });
  return Number(fs.readFileSync(hwm, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Analysis: linearity, ratios, targets

function fit(points: ReadonlyArray<readonly [number, number]>): { slope: number; intercept: number; r2: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = my - slope * mx;
  const ssTot = points.reduce((s, [, y]) => s + (y - my) ** 2, 0);
  const ssRes = points.reduce((s, [x, y]) => s + (y - (intercept + slope * x)) ** 2, 0);
  return { slope, intercept, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}

function linearity(results: Results, sizes: readonly number[]): Linearity {
  const out = {} as Linearity;
  const maxN = sizes[sizes.length - 1]!;
  for (const command of ['status', 'start', 'stop'] as const) {
    out[command] = {} as Record<Method, LinearityEntry>;
    for (const method of METHODS) {
      const points = sizes.map((n): [number, number] => [n, results[command][n]![method].median_ms]);
      const all = fit(points);
      const smaller = points.filter(([n]) => n < maxN);
      const entry: LinearityEntry = {
        slope_ms_per_instance: round(all.slope, 3),
        intercept_ms: round(all.intercept, 1),
        r2: round(all.r2, 4),
      };
      if (smaller.length >= 2) {
        const f = fit(smaller);
        const predicted = f.intercept + f.slope * maxN;
        const measured = results[command][maxN]![method].median_ms;
        Object.assign(entry, {
          fitted_on: smaller.map(([n]) => n),
          slope_small_ms_per_instance: round(f.slope, 3),
          predicted_at_max_ms: round(predicted, 1),
          measured_at_max_ms: measured,
          max_n: maxN,
          excess_over_linear: round(measured / predicted - 1, 3),
        });
      }
      out[command][method] = entry;
    }
  }
  return out;
}

/** The size a target names, or the largest measured size at or below it (a --quick run). */
function sizeFor(sizes: readonly number[], wanted: number): number {
  if (sizes.includes(wanted)) return wanted;
  const below = sizes.filter((n) => n <= wanted);
  return below.length > 0 ? below[below.length - 1]! : sizes[0]!;
}

interface StartStopRatios {
  controller_vs_baseline: number;
  controller_vs_floor: number;
  controller_minus_floor_ms: number;
  controller_vs_floor_plus_node: number;
  baseline_vs_floor: number;
}

function ratios(results: Results, sizes: readonly number[]) {
  const out = {
    status: {} as Record<number, { controller_vs_node: number; controller_vs_baseline: number }>,
    start: {} as Record<number, StartStopRatios>,
    stop: {} as Record<number, StartStopRatios>,
  };
  for (const n of sizes) {
    const s = results.status[n]!;
    out.status[n] = {
      controller_vs_node: round(s.controller.median_ms / s.floor.median_ms, 3),
      controller_vs_baseline: round(s.controller.median_ms / s.baseline.median_ms, 3),
    };
    for (const command of ['start', 'stop'] as const) {
      const r = results[command][n]!;
      const node = results.node_e0[n]!.median_ms;
      out[command][n] = {
        controller_vs_baseline: round(r.controller.median_ms / r.baseline.median_ms, 3),
        controller_vs_floor: round(r.controller.median_ms / r.floor.median_ms, 3),
        controller_minus_floor_ms: round(r.controller.median_ms - r.floor.median_ms, 1),
        controller_vs_floor_plus_node: round(r.controller.median_ms / (r.floor.median_ms + node), 3),
        baseline_vs_floor: round(r.baseline.median_ms / r.floor.median_ms, 3),
      };
    }
  }
  return out;
}

function target(id: string, description: string, n: number, value: number, limit: number, unit: string): Target {
  return {
    id, description, n, value: round(value, 2), limit: round(limit, 2), unit,
    met: value <= limit,
    over_by: round(value - limit, 2),
    // > 1 means the target is missed by that factor; e.g. 1.3 = 30 % over the limit.
    value_over_limit: round(value / limit, 3),
  };
}

function targets(results: Results, sizes: readonly number[], memory: Memory, lin: Linearity): Target[] {
  const list: Target[] = [];
  const ns = sizeFor(sizes, TARGET_SIZES.status);
  const st = results.status[ns]!;
  list.push(target('status_vs_node', `status, ${ns} running instances, at most ${LIMITS.statusVsNode} × node -e 0`, ns, st.controller.median_ms, LIMITS.statusVsNode * st.floor.median_ms, 'ms'));
  const dec = results.status_decomposition;
  if (dec !== undefined) {
    list.push(target('status_code_cache_vs_node', `status, ${dec.n} running instances, as installed (V8 code cache), at most ${LIMITS.statusVsNode} × node -e 0`, dec.n, dec.status_code_cache.median_ms, LIMITS.statusVsNode * st.floor.median_ms, 'ms'));
  }
  for (const command of ['start', 'stop'] as const) {
    const n = sizeFor(sizes, TARGET_SIZES[command]);
    const r = results[command][n]!;
    const node = results.node_e0[n]!.median_ms;
    list.push(target(`${command}_vs_baseline`, `${command}, ${n} instances, at most ${LIMITS.vsBaseline} × the per-slot baseline`, n, r.controller.median_ms, LIMITS.vsBaseline * r.baseline.median_ms, 'ms'));
    list.push(target(`${command}_vs_floor`, `${command}, ${n} instances, at most the floor + one node -e 0`, n, r.controller.median_ms, r.floor.median_ms + node, 'ms'));
  }
  for (const command of ['status', 'start', 'stop'] as const) {
    const e = lin[command].controller;
    if (e.excess_over_linear !== undefined && e.max_n !== undefined && e.fitted_on !== undefined && e.measured_at_max_ms !== undefined && e.predicted_at_max_ms !== undefined) {
      list.push(target(`${command}_linear`, `${command}: time at N=${e.max_n} at most ${1 + LIMITS.linearExcess} × the linear prediction from N=${e.fitted_on.join(',')}`, e.max_n, e.measured_at_max_ms, (1 + LIMITS.linearExcess) * e.predicted_at_max_ms, 'ms'));
    }
  }
  list.push(target('memory', `peak memory (VmHWM) of the controller at N=${memory.instances}, at most ${LIMITS.memoryMiB} MiB`, memory.instances, memory.peak_kib / 1024, LIMITS.memoryMiB, 'MiB'));
  return list;
}

// ---------------------------------------------------------------------------------------------
// Report

/** The commit measured (read-only git queries), and whether the working tree differs from it. */
function revision(): { commit: string | null; src_modified: boolean | null } {
  const git = (args: readonly string[]) => spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', env: ENV });
  const head = git(['rev-parse', '--short', 'HEAD']);
  if (head.status !== 0) return { commit: null, src_modified: null };
  const dirty = git(['status', '--porcelain', '--', 'src']).stdout.trim() !== '';
  return { commit: head.stdout.trim(), src_modified: dirty };
}

const loadavg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function machine(ssd: string) {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown';
  const memKiB = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m) ?? [])[1]);
  return {
    nproc: os.availableParallelism(),
    cpu_model: cpu.trim(),
    memory_mib: Math.round(memKiB / 1024),
    kernel: `${os.type()} ${os.release()}`,
    os: (fs.existsSync('/etc/debian_version') ? `Debian ${fs.readFileSync('/etc/debian_version', 'utf8').trim()}` : os.version()),
    node: process.version,
    php_fpm: firstLine(FPM, ['-v']),
    start_stop_daemon: `${ssd} (${firstLine(ssd, ['--version'])})`,
    sh: fs.realpathSync('/bin/sh'),
  };
}

function pad(text: string | number, width: number, right = false): string {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

function table(report: Report): string {
  const lines: string[] = [];
  // A figure that was not finite is NaN here (null in the JSON) and prints as '-'.
  const f = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
  const r2 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(2));
  lines.push(`php-fpm-multi bench (${report.meta.quick ? 'quick' : 'full'} run; median of ${report.meta.reps} repetitions after one warm-up; times in ms)`);
  lines.push(`commit ${report.meta.commit ?? '?'}${report.meta.src_modified ? ' (src/ modified)' : ''}; load average before ${report.meta.loadavg_before}, after ${report.meta.loadavg_after}`);
  lines.push(`machine: ${report.machine.nproc} CPUs (${report.machine.cpu_model}), ${report.machine.memory_mib} MiB, ${report.machine.kernel}, node ${report.machine.node}, ${report.machine.php_fpm}`);
  lines.push('');
  lines.push(`${pad('command', 8)} ${pad('N', 4, true)} ${pad('controller', 11, true)} ${pad('per-slot', 10, true)} ${pad('floor', 9, true)} ${pad('ctl/slot', 9, true)} ${pad('ctl/floor', 10, true)} ${pad('ctl-floor', 10, true)} ${pad('node -e 0', 10, true)}`);
  for (const command of ['status', 'start', 'stop'] as const) {
    for (const n of report.meta.sizes) {
      const r = report.results[command][n]!;
      const node = command === 'status' ? r.floor.median_ms : report.results.node_e0[n]!.median_ms;
      lines.push(`${pad(command, 8)} ${pad(n, 4, true)} ${pad(f(r.controller.median_ms), 11, true)} ${pad(f(r.baseline.median_ms), 10, true)} ${pad(f(r.floor.median_ms), 9, true)} ${pad(r2(r.controller.median_ms / r.baseline.median_ms), 9, true)} ${pad(r2(r.controller.median_ms / r.floor.median_ms), 10, true)} ${pad(f(r.controller.median_ms - r.floor.median_ms), 10, true)} ${pad(f(node), 10, true)}`);
    }
  }
  lines.push('(status: the floor is node -e 0; start/stop: the floor is every launch at once / SIGQUIT to all and a 10 ms poll)');
  const rd = report.results.reading;
  if (rd === undefined) throw new Error('the reading figure is missing');
  lines.push('');
  lines.push(`reading ${rd.instances} instances (list --json): controller ${f(rd.controller.median_ms)}, node -e 0 ${f(rd.floor.median_ms)} (ratio ${r2(rd.controller.median_ms / rd.floor.median_ms)}), /bin/sh sourcing the string-form half ${f(rd.sh_source.median_ms)}`);
  const mem = report.memory;
  lines.push(`peak memory (VmHWM) at N=${mem.instances}: start ${mem.start_kib} KiB, status ${mem.status_kib} KiB, stop ${mem.stop_kib} KiB; list --json of ${rd.instances}: ${mem.list_1000_kib} KiB; node -e 0: ${mem.node_e0_kib} KiB`);
  lines.push('');
  lines.push('linearity (controller; least squares over all N; N_max against the line through the smaller N):');
  for (const command of ['status', 'start', 'stop'] as const) {
    for (const method of METHODS) {
      const e = report.linearity[command][method];
      const extra = e.excess_over_linear === undefined ? '' : `; N=${e.max_n}: ${f(e.measured_at_max_ms)} vs ${f(e.predicted_at_max_ms)} predicted (${e.excess_over_linear >= 0 ? '+' : ''}${(e.excess_over_linear * 100).toFixed(0)} %)`;
      lines.push(`  ${pad(command, 6)} ${pad(method, 10)} ${e.slope_ms_per_instance.toFixed(2)} ms/instance + ${f(e.intercept_ms)} ms (R² ${e.r2.toFixed(3)})${extra}`);
    }
  }
  lines.push('');
  const dec = report.results.status_decomposition;
  if (dec !== undefined) {
    lines.push(`status of ${dec.n} taken apart (medians, ms): node start ${f(dec.node_start_ms)}; module load (read, compile, top level: --version minus node -e 0) ${f(dec.module_load_ms)}; work (status minus --version) ${f(dec.work_ms)}; compile saved by the code cache ${f(dec.compile_saved_by_code_cache_ms)} (status ${f(dec.status.median_ms)}, with the cache ${f(dec.status_code_cache.median_ms)})`);
    lines.push('');
  }
  lines.push('targets:');
  for (const t of report.targets) {
    lines.push(`  ${t.met ? 'met   ' : 'MISSED'} ${t.description}: ${t.value} ${t.unit} (limit ${t.limit}; ${(t.value_over_limit * 100).toFixed(0)} % of it)`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Main

let scratch: Scratch | null = null;
let cleaned = false;
function cleanUpOnce() {
  if (cleaned) return;
  cleaned = true;
  try {
    cleanUp(scratch);
  } catch (error) {
    log(`cleanup failed: ${(error as Error).message}`);
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping every instance of this run and removing the scratch directory`);
    cleanUpOnce();
    process.exit(128 + os.constants.signals[sig]);
  });
}
process.on('exit', cleanUpOnce);

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const ssd = preflight();
  const sizes = options.sizes;
  const maxN = sizes[sizes.length - 1]!;
  const scratchOfRun = createScratch(Math.max(maxN, options.profile ? 32 : 0));
  scratch = scratchOfRun;
  log(`scratch directory ${scratch.dir}; sizes ${sizes.join(', ')}; ${options.reps} repetitions after one warm-up`);
  const started = Date.now();
  const loadBefore = loadavg();
  const results: Results = { status: {}, start: {}, stop: {}, node_e0: {} };
  for (const n of sizes) {
    log(`N=${n}: start and stop (controller, per-slot baseline, floor)`);
    const ss = await measureStartStop(scratchOfRun, ssd, n, options.reps);
    results.start[n] = summaries(ss.start);
    results.stop[n] = summaries(ss.stop);
    log(`N=${n}: status`);
    const decompose = n === sizeFor(sizes, TARGET_SIZES.status);
    const st = await measureStatus(scratchOfRun, ssd, n, options.reps, decompose);
    results.status[n] = summaries(st);
    results.node_e0[n] = summary([...ss.node, ...st.floor]);
    if (st.decomposition !== undefined) {
      const node = median(st.floor);
      const version = median(st.decomposition.version);
      const status = median(st.controller);
      const cached = median(st.decomposition.code_cache);
      results.status_decomposition = {
        n,
        node_e0: summary(st.floor),
        version: summary(st.decomposition.version),
        status: summary(st.controller),
        status_code_cache: summary(st.decomposition.code_cache),
        node_start_ms: round(node, 2),
        module_load_ms: round(version - node, 2),
        compile_saved_by_code_cache_ms: round(status - cached, 2),
        work_ms: round(status - version, 2),
      };
    }
  }
  log(`reading ${READING_INSTANCES} instances`);
  const readingDecl = createReadingDeclaration(scratchOfRun);
  const rd = await measureReading(scratchOfRun, readingDecl, options.reps);
  results.reading = { instances: READING_INSTANCES, controller: summary(rd.controller), floor: summary(rd.floor), sh_source: summary(rd.sh_source) };
  const memN = sizeFor(sizes, TARGET_SIZES.memory);
  log(`peak memory at N=${memN}`);
  const memory = await measureMemory(scratchOfRun, memN, readingDecl, options.quick ? 1 : 3);
  const lin = linearity(results, sizes);
  const report: Report = {
    meta: {
      command: `scripts/bench ${process.argv.slice(2).join(' ')}`.trim(),
      quick: options.quick,
      reps: options.reps,
      warm_up: 1,
      sizes,
      date: new Date().toISOString(),
      duration_s: 0,
      controller: `node ${path.relative(ROOT, CLI)}`,
      ...revision(),
      loadavg_before: loadBefore,
      loadavg_after: null,
      environment: 'every command runs with PATH and LANG=C only (e.g. NODE_EXTRA_CA_CERTS would add ~40 ms to every node start)',
      concurrency_note: 'the controller runs at most max(4, 4 × CPUs) operations at once (src/process/parallel.ts)',
    },
    machine: machine(ssd),
    results,
    ratios: ratios(results, sizes),
    linearity: lin,
    memory,
    targets: [],
  };
  report.targets = targets(results, sizes, memory, lin);
  if (options.profile) {
    const { profile } = await import('./profile.js');
    report.profile = await profile({ scratch: scratchOfRun, filesFor, verifyRunning, verifyClean, log, ENV, CLI, NODE, ROOT });
  }
  report.meta.duration_s = Math.round((Date.now() - started) / 1000);
  report.meta.loadavg_after = loadavg();
  fs.mkdirSync(path.dirname(options.json), { recursive: true });
  fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(table(report));
  if (report.profile) process.stdout.write(report.profile.text);
  log(`results written to ${options.json} (${report.meta.duration_s} s)`);
}

main().then(
  () => {
    cleanUpOnce();
    process.exit(0);
  },
  (error: Error) => {
    log(`failed: ${error.stack ?? error.message}`);
    cleanUpOnce();
    process.exit(1);
  },
);
