// scripts/bench --profile: where the controller's time goes, for status (32 running instances)
// and start and stop (16 instances), on the bench's scratch instances.
//
// - module loading: the static import graph of each command (files, lines), the ESM loader's cost
//   per module (a synthetic chain of 20 empty modules), and the import time of each command;
// - one command in a fresh process (profile-child.ts) with the real System wrapped to count
//   every read of /proc, every scan of /proc, every spawn (flock, php-fpm --test, launches) and
//   its duration, every sleep and signal; node's bootstrap and the imports timed apart;
// - the pieces, cold: reading the declaration, one scan of /proc, the lock, the records, the
//   php-fpm configs, one fsynced record write;
// - syscalls of the real CLI (strace -f -c), when strace is installed (it is not installed for
//   this: the profile only uses it when present).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Scratch } from './bench.js';
import type { CommandProfile, PiecesProfile } from './profile-child.js';

const REPS = 5;
/** The compiled profile-child, next to this file. */
const CHILD = fileURLToPath(new URL('./profile-child.js', import.meta.url));

type Env = Readonly<Record<string, string>>;

/** What scripts/bench gives the profile: its scratch instances and checks. */
export interface ProfileContext {
  scratch: Scratch;
  filesFor(scratch: Scratch, n: number): { decl: string; list: string };
  verifyRunning(scratch: Scratch, n: number, what: string): void;
  verifyClean(scratch: Scratch, what: string): void;
  log(text: string): void;
  ENV: Env;
  CLI: string;
  NODE: string;
  ROOT: string;
}

interface ImportGraph {
  files: string[];
  file_count: number;
  lines: number;
  packages: string[];
  builtins: string[];
}

interface StraceCounts {
  total_syscalls: number;
  top: Record<string, number>;
  execve: Record<string, number>;
  js_files_opened: number;
  proc_opens: number;
  proc_readlinks: number;
}

export interface Profile {
  sizes: { status: number; start: number; stop: number };
  modules: Record<string, ImportGraph>;
  esm_loader: { chain_of_20_ms: number; one_module_ms: number; per_module_ms: number };
  status: CommandProfile;
  start: CommandProfile;
  stop: CommandProfile;
  pieces_32: PiecesProfile;
  strace_status: StraceCounts | null;
  strace_start: StraceCounts | null;
  strace_stop: StraceCounts | null;
  text: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Field-wise median of several runs' JSON (numbers only; other values from the first run). */
function medianOf<T>(runs: readonly T[]): T {
  return medianOfValues(runs) as T;
}

function medianOfValues(runs: readonly unknown[]): unknown {
  const first = runs[0];
  if (typeof first === 'number') return Math.round(median(runs as number[]) * 100) / 100;
  if (first === null || typeof first !== 'object' || Array.isArray(first)) return first;
  const fields = (r: unknown): Record<string, unknown> => (r !== null && typeof r === 'object' ? (r as Record<string, unknown>) : {});
  const firstFields = fields(first);
  const keys = new Set(runs.flatMap((r) => Object.keys(fields(r))));
  return Object.fromEntries([...keys].map((k) => [k, medianOfValues(runs.map((r) => fields(r)[k] ?? (typeof firstFields[k] === 'number' ? 0 : firstFields[k])))]));
}

/** The static import graph of a compiled module: our files (with lines), packages, builtins. */
function importGraph(distDir: string, entry: string): ImportGraph {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const builtins = new Set<string>();
  let lines = 0;
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    lines += text.split('\n').length;
    for (const match of text.matchAll(/^\s*(?:import|export)\s+(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
      const spec = match[1] ?? '';
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else if (spec.startsWith('node:')) builtins.add(spec);
      else packages.add(spec);
    }
  };
  visit(path.join(distDir, entry));
  return { files: [...seen].map((f) => path.relative(path.dirname(distDir), f)).sort(), file_count: seen.size, lines, packages: [...packages], builtins: [...builtins].sort() };
}

/** Runs a node script that prints one JSON line last; T is what that script says it prints. */
function runJson<T>(NODE: string, args: readonly string[], env: Env): T {
  const result = spawnSync(NODE, args, { encoding: 'utf8', env, maxBuffer: 16 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`profile: ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as T;
}

function cli(NODE: string, CLI: string, ENV: Env, decl: string, command: string): void {
  const result = spawnSync(NODE, [CLI, '--conf', decl, command], { encoding: 'utf8', env: ENV });
  if (result.status !== 0) throw new Error(`profile: ${command} failed (${result.status}): ${result.stderr}`);
}

/** Per-module cost of Node's ESM loader: a chain of 20 trivial modules against one. */
function loaderCostPerModule(NODE: string, dir: string, ENV: Env): Profile['esm_loader'] {
  const chain = path.join(dir, 'module-chain');
  fs.mkdirSync(chain, { recursive: true });
  for (let i = 1; i <= 20; i += 1) {
    fs.writeFileSync(path.join(chain, `m${i}.mjs`), `${i < 20 ? `import './m${i + 1}.mjs';\n` : ''}export const v${i} = ${i};\n`);
  }
  fs.writeFileSync(path.join(chain, 'one.mjs'), 'export const v = 1;\n');
  const probe = path.join(chain, 'probe.mjs');
  fs.writeFileSync(probe, `await import('data:text/javascript,export default 0');\nconst t = performance.now();\nawait import(process.argv[2]);\nprocess.stdout.write(JSON.stringify({ ms: performance.now() - t }));\n`);
  const time = (target: string): number => median(Array.from({ length: REPS }, () => runJson<{ ms: number }>(NODE, [probe, target], ENV).ms));
  const twenty = time(path.join(chain, 'm1.mjs'));
  const one = time(path.join(chain, 'one.mjs'));
  return { chain_of_20_ms: Math.round(twenty * 100) / 100, one_module_ms: Math.round(one * 100) / 100, per_module_ms: Math.round(((twenty - one) / 19) * 100) / 100 };
}

/** strace -f -c of one CLI run: syscall counts; plus execve and openat of .js and /proc files. */
function straceCounts(CLI: string, NODE: string, ENV: Env, decl: string, command: string, dir: string, prepare = (): void => {}): StraceCounts | null {
  const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => fs.existsSync(p));
  if (!strace) return null;
  const summaryFile = path.join(dir, `strace-${command}.txt`);
  prepare();
  // -b execve: follow the controller's threads and children but let go of each child at its
  // execve (flock, php-fpm), so a daemonized php-fpm master is never held by strace.
  spawnSync(strace, ['-f', '-b', 'execve', '-c', '-o', summaryFile, NODE, CLI, '--conf', decl, command], { env: ENV, timeout: 120_000 });
  const calls: Record<string, number> = {};
  for (const line of fs.readFileSync(summaryFile, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)$/.exec(line);
    if (m?.[3] !== undefined && m[3] !== 'total') calls[m[3]] = Number(m[1]);
  }
  const traceFile = path.join(dir, `strace-${command}-files.txt`);
  prepare();
  spawnSync(strace, ['-f', '-b', 'execve', '-e', 'trace=execve,openat,readlink,readlinkat', '-o', traceFile, NODE, CLI, '--conf', decl, command], { env: ENV, timeout: 120_000 });
  const trace = fs.readFileSync(traceFile, 'utf8').split('\n');
  const execs: Record<string, number> = {};
  for (const line of trace) {
    const m = /execve\("([^"]+)"/.exec(line);
    if (m?.[1] !== undefined && !line.includes('ENOENT')) execs[path.basename(m[1])] = (execs[path.basename(m[1])] ?? 0) + 1;
  }
  const opened = (re: RegExp): number => new Set(trace.filter((l) => l.includes('openat(') && !l.includes('ENOENT') && re.test(l)).map((l) => /openat\([^"]*"([^"]+)"/.exec(l)?.[1])).size;
  const openCount = (re: RegExp): number => trace.filter((l) => l.includes('openat(') && re.test(l)).length;
  return {
    total_syscalls: Object.values(calls).reduce((a, b) => a + b, 0),
    top: Object.fromEntries(Object.entries(calls).sort((a, b) => b[1] - a[1]).slice(0, 8)),
    execve: execs,
    js_files_opened: opened(/\.(m?js|json)"/),
    proc_opens: openCount(/"\/proc\//),
    proc_readlinks: trace.filter((l) => /readlink(at)?\(.*"\/proc\/\d+\/exe"/.test(l)).length,
  };
}

export async function profile({ scratch, filesFor, verifyRunning, verifyClean, log, ENV, CLI, NODE, ROOT }: ProfileContext): Promise<Profile> {
  // The controller's modules one by one (tsc's output for the harness): dist/ is one bundle, so
  // the import graph and the per-module import times are of the modules, not of what ships; the
  // bundle's own load and compile times are in the decomposition (decomposeStatus in bench.ts).
  const dist = path.join(ROOT, 'build', 'bench', 'src');
  const child = CHILD;
  const sizes = { status: 32, start: 16, stop: 16 };
  log('profile: module graphs and the ESM loader');
  const modules = {
    status: importGraph(dist, 'commands/status.js'),
    start_stop: importGraph(dist, 'commands/lifecycle.js'),
    list: importGraph(dist, 'commands/list.js'),
    cli: importGraph(dist, 'cli.js'),
    fpm_config: importGraph(dist, 'php-fpm/config/load.js'),
  };
  const esmLoader = loaderCostPerModule(NODE, scratch.dir, ENV);

  const d32 = filesFor(scratch, 32).decl;
  const d16 = filesFor(scratch, 16).decl;
  log('profile: status, 32 running instances');
  cli(NODE, CLI, ENV, d32, 'start');
  verifyRunning(scratch, 32, 'profile: start 32');
  const status = medianOf(Array.from({ length: REPS }, () => runJson<CommandProfile>(NODE, [child, dist, 'command', 'status', d32], ENV)));
  const pieces32 = medianOf(Array.from({ length: REPS }, () => runJson<PiecesProfile>(NODE, [child, dist, 'pieces', d32, scratch.dir], ENV)));
  const straceStatus = straceCounts(CLI, NODE, ENV, d32, 'status', scratch.dir);
  cli(NODE, CLI, ENV, d32, 'stop');
  verifyClean(scratch, 'profile: stop 32');

  log('profile: start and stop, 16 instances');
  const starts: CommandProfile[] = [];
  const stops: CommandProfile[] = [];
  for (let i = 0; i < REPS; i += 1) {
    starts.push(runJson<CommandProfile>(NODE, [child, dist, 'command', 'start', d16], ENV));
    verifyRunning(scratch, 16, 'profile: start 16');
    stops.push(runJson<CommandProfile>(NODE, [child, dist, 'command', 'stop', d16], ENV));
    verifyClean(scratch, 'profile: stop 16');
  }
  const stopped = () => {
    cli(NODE, CLI, ENV, d16, 'stop');
    verifyClean(scratch, 'profile: strace, stop 16');
  };
  const running = () => {
    cli(NODE, CLI, ENV, d16, 'start');
    verifyRunning(scratch, 16, 'profile: strace, start 16');
  };
  const straceStart = straceCounts(CLI, NODE, ENV, d16, 'start', scratch.dir, stopped);
  const straceStop = straceCounts(CLI, NODE, ENV, d16, 'stop', scratch.dir, running);
  stopped();
  const out: Profile = {
    sizes, modules, esm_loader: esmLoader, status, pieces_32: pieces32, strace_status: straceStatus,
    start: medianOf(starts), stop: medianOf(stops), strace_start: straceStart, strace_stop: straceStop, text: '',
  };
  out.text = describe(out);
  return out;
}

function describe(p: Profile): string {
  const f = (x: unknown): string => (typeof x === 'number' ? x.toFixed(1) : '-');
  const lines = ['', 'profile (medians of 5 fresh processes; ms):'];
  for (const [name, g] of Object.entries(p.modules)) {
    lines.push(`  modules of ${name}: ${g.file_count} files, ${g.lines} lines${g.packages.length ? `, packages ${g.packages.join(' ')}` : ''}; builtins ${g.builtins.join(' ')}`);
  }
  lines.push(`  ESM loader: ${f(p.esm_loader.per_module_ms)} ms per module (20 empty modules ${f(p.esm_loader.chain_of_20_ms)}, one ${f(p.esm_loader.one_module_ms)})`);
  for (const command of ['status', 'start', 'stop'] as const) {
    const r = p[command];
    lines.push(`  ${command} (N=${p.sizes[command]}): import cli.js ${f(r.cli_import_ms)} + import the command ${f(r.command_import_ms)} (after the ESM loader's own ${f(r.esm_loader_ms)}), the command itself ${f(r.command_ms)}${r.first_spawn_at_ms === null ? '' : `; its first spawn at ${f(r.first_spawn_at_ms)}`}`);
    lines.push(`    calls: ${Object.entries(r.calls).map(([k, v]) => `${k} ${v}`).join(', ')}; sleeps ${r.sleeps}; signals ${r.kills}`);
    const spawns = Object.entries(r.spawns);
    if (spawns.length > 0) lines.push(`    spawns: ${spawns.map(([k, v]) => `${k} ×${v.count} (mean ${f(v.mean_ms)}, max ${f(v.max_ms)})`).join('; ')}`);
  }
  const pc = p.pieces_32;
  lines.push(`  pieces (32 declared instances, cold): declaration ${f(pc.load_model_ms)} (warm ${f(pc.load_model_warm_ms)}), one /proc scan of ${pc.processes_on_machine} processes ${f(pc.proc_scan_ms)} (warm ${f(pc.proc_scan_warm_ms)}), lock ${f(pc.lock_ms)} + release ${f(pc.lock_release_ms)}, records ${f(pc.records_ms)}, import fpm-config.js ${f(pc.fpm_config_import_ms)}, 32 php-fpm configs ${f(pc.fpm_configs_ms)}, one fsynced record write ${f(pc.record_write_fsync_ms)}`);
  lines.push(`  one process poll: readProcess ${f(pc.read_process_x100_ms / 100)} vs /proc/PID/stat alone ${f(pc.read_stat_x100_ms / 100)}`);
  for (const command of ['status', 'start', 'stop'] as const) {
    const s = p[`strace_${command}`];
    if (s) lines.push(`  strace ${command}: ${s.total_syscalls} syscalls (${Object.entries(s.top).map(([k, v]) => `${k} ${v}`).join(', ')}); execve ${Object.entries(s.execve).map(([k, v]) => `${k} ${v}`).join(', ')}; ${s.js_files_opened} .js/.json files; ${s.proc_opens} opens under /proc, ${s.proc_readlinks} readlinks of /proc/PID/exe`);
  }
  return `${lines.join('\n')}\n`;
}
