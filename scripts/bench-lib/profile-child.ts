// One profiled controller run, for scripts/bench --profile (scripts/bench-lib/profile.ts).
//
//   node profile-child.js DIST command COMMAND DECL   runs one command as dist/cli.js would, in
//        this fresh process, with the real System wrapped to count and time every call; prints
//        JSON: the node bootstrap before this script, the import of the command's modules, the
//        command itself, and what it did (reads of /proc, scans of /proc, spawns, sleeps, signals)
//   node profile-child.js DIST pieces DECL SCRATCH     times, cold, the parts a command is made of:
//        reading the declaration, one scan of /proc, the lock, the records, php-fpm configs, and
//        one atomic record write
//
// It only imports the compiled modules (build/bench/src/, tsc's output of src/ one module a file:
// dist/ is one bundle), never changes them; their types come from src/,
// so that a change of what it calls fails the type check (scripts/test), not the next profile.
import { performance } from 'node:perf_hooks';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Io } from '../../src/cli/command.js';
import type { System } from '../../src/process/system.js';

// performance.now() when this script starts: node's bootstrap, measured from node's time origin
// (which lies before exec; compare runs with each other, not with wall-clock figures).
const bootMs = performance.now();
const [dist = 'dist', mode, ...rest] = process.argv.slice(2);
const url = (file: string): string => pathToFileURL(join(dist, file)).href;

/** A compiled module of dist/, typed as its source in src/ says. */
async function load<Module>(file: string): Promise<Module> {
  return (await import(url(file))) as Module;
}

async function timeImport<Module>(specifier: string): Promise<[Module, number]> {
  const started = performance.now();
  const module = (await import(specifier)) as Module;
  return [module, performance.now() - started];
}

interface SpawnStat {
  count: number;
  total_ms: number;
  max_ms: number;
  mean_ms?: number;
}

interface Stats {
  calls: Record<string, number>;
  spawns: Array<{ what: string; ms: number }>;
  sleeps: number;
  kills: number;
  firstSpawnAtMs: number | null;
  lastSpawnEndMs: number | null;
}

/** The real System, every call counted (and spawns timed); the commands accept it as io.system. */
function instrument(real: System): { system: System; stats: Stats } {
  const stats: Stats = { calls: {}, spawns: [], sleeps: 0, kills: 0, firstSpawnAtMs: null, lastSpawnEndMs: null };
  const origin = performance.now();
  const count = (key: string): void => {
    stats.calls[key] = (stats.calls[key] ?? 0) + 1;
  };
  const where = (path: string): string => (path === '/proc' ? '/proc' : path.startsWith('/proc/') ? '/proc/PID/*' : 'other');
  // The real System's methods are own properties of a plain object (createRealSystem), so the
  // spread copies them all; the ones below are replaced by counting wrappers.
  const system: System = { ...real };
  system.readFile = (path) => {
    count(`readFile ${where(path)}`);
    return real.readFile(path);
  };
  system.readlink = (path) => {
    count(`readlink ${where(path)}`);
    return real.readlink(path);
  };
  system.readdir = (path) => {
    count(`readdir ${where(path)}`);
    return real.readdir(path);
  };
  system.realpath = (path) => {
    count('realpath');
    return real.realpath(path);
  };
  system.lstat = (path) => {
    count('lstat');
    return real.lstat(path);
  };
  system.stat = (path) => {
    count('stat');
    return real.stat(path);
  };
  system.writeFileAtomic = (path, content, mode) => {
    count('writeFileAtomic');
    return real.writeFileAtomic(path, content, mode);
  };
  system.unlink = (path) => {
    count('unlink');
    return real.unlink(path);
  };
  system.mkdir = (path, mode) => {
    count('mkdir');
    return real.mkdir(path, mode);
  };
  system.openLockFile = (path) => {
    count('openLockFile');
    return real.openLockFile(path);
  };
  system.kill = (pid, signal) => {
    stats.kills += 1;
    return real.kill(pid, signal);
  };
  system.sleep = (ms) => {
    stats.sleeps += 1;
    return real.sleep(ms);
  };
  system.run = async (program, args, options) => {
    const started = performance.now();
    stats.firstSpawnAtMs ??= started - origin;
    try {
      return await real.run(program, args, options);
    } finally {
      const ended = performance.now();
      stats.lastSpawnEndMs = ended - origin;
      const what = basename(program) === 'flock' ? 'flock (the lock)' : args.includes('--test') ? `${basename(program)} --test` : `${basename(program)} (launch)`;
      stats.spawns.push({ what, ms: ended - started });
    }
  };
  return { system, stats };
}

function summarizeSpawns(spawns: Stats['spawns']): Record<string, SpawnStat> {
  const by: Record<string, SpawnStat> = {};
  for (const { what, ms } of spawns) {
    const entry = (by[what] ??= { count: 0, total_ms: 0, max_ms: 0 });
    entry.count += 1;
    entry.total_ms += ms;
    entry.max_ms = Math.max(entry.max_ms, ms);
  }
  for (const entry of Object.values(by)) {
    entry.mean_ms = entry.total_ms / entry.count;
  }
  return by;
}

type CommandModule = typeof import('../../src/commands/status.js') & typeof import('../../src/commands/lifecycle.js');
const COMMANDS = ['status', 'start', 'stop'] as const;
type ProfiledCommand = (typeof COMMANDS)[number];

function profiledCommand(name: string | undefined): ProfiledCommand {
  const found = COMMANDS.find((command) => command === name);
  if (found === undefined) throw new Error(`profile-child: command must be one of ${COMMANDS.join(', ')}, not ${name}`);
  return found;
}

/** What `profile-child.js DIST command …` prints (profile.ts reads it). */
export type CommandProfile = Awaited<ReturnType<typeof runCommand>>;
/** What `profile-child.js DIST pieces …` prints. */
export type PiecesProfile = Awaited<ReturnType<typeof pieces>>;

async function runCommand(command: ProfiledCommand, decl: string) {
  // The ESM loader's own start-up, paid once by any first import, is kept apart from the modules.
  const [, loaderMs] = await timeImport('data:text/javascript,export default 0');
  const file = command === 'status' ? 'commands/status.js' : 'commands/lifecycle.js';
  const [cliModule, cliImportMs] = await timeImport(url('cli.js')); // cli.js and what it imports statically
  const [module, commandImportMs] = await timeImport<CommandModule>(url(file));
  const { createRealSystem } = await load<typeof import('../../src/process/system.js')>('process/system.js');
  const { system, stats } = instrument(createRealSystem());
  let out = 0;
  let err = '';
  const io: Io = {
    stdout: (t) => void (out += t.length), stderr: (t) => void (err += t), env: { PATH: process.env['PATH'] }, system,
  };
  const started = performance.now();
  const code = await module[command]({ io, conf: decl, json: false, selection: [], partial: false });
  const commandMs = performance.now() - started;
  void cliModule;
  return {
    clock_at_script_start_ms: bootMs, esm_loader_ms: loaderMs, cli_import_ms: cliImportMs, command_import_ms: commandImportMs,
    command_ms: commandMs, exit_code: code, stderr: err.slice(0, 2000), stdout_chars: out,
    calls: stats.calls, spawns: summarizeSpawns(stats.spawns), sleeps: stats.sleeps, kills: stats.kills,
    first_spawn_at_ms: stats.firstSpawnAtMs, last_spawn_end_ms: stats.lastSpawnEndMs,
  };
}

async function timeCold<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await fn();
  return [result, performance.now() - started];
}

async function pieces(decl: string, scratchDir: string) {
  const { loadModel } = await load<typeof import('../../src/model/load.js')>('model/load.js');
  const { createRealSystem } = await load<typeof import('../../src/process/system.js')>('process/system.js');
  const proc = await load<typeof import('../../src/process/proc.js')>('process/proc.js');
  const { acquireLock } = await load<typeof import('../../src/process/lock.js')>('process/lock.js');
  const { readRecords } = await load<typeof import('../../src/process/record.js')>('process/record.js');
  const [, fpmConfigImportMs] = await timeImport(url('php-fpm/config/load.js'));
  const { readFpmConfig } = await load<typeof import('../../src/php-fpm/config/load.js')>('php-fpm/config/load.js');
  const system = createRealSystem();
  const env = { PATH: process.env['PATH'] };
  const [model, loadModelMs] = await timeCold(() => loadModel(system, decl, env));
  const [, loadModelWarmMs] = await timeCold(() => loadModel(system, decl, env));
  // One scan of /proc as the controller does it (the stat of every process).
  const [processes, scanMs] = await timeCold(() => proc.listStats(system));
  const [, scanWarmMs] = await timeCold(() => proc.listStats(system));
  const runDir = model.runDir;
  if (runDir === null) throw new Error(`profile-child: ${decl} has no run directory: ${model.problems.join('; ')}`);
  const [, recordsMs] = await timeCold(() => readRecords(system, runDir));
  const [, fpmConfigsMs] = await timeCold(async () => {
    for (const instance of model.instances) {
      if (instance.config !== null && instance.pidfile !== null) await readFpmConfig(system, instance.config, { env: instance.env, pidFile: instance.pidfile, forceDaemonize: true });
    }
  });
  const lockFile = join(scratchDir, 'profile.lock');
  const [lock, lockMs] = await timeCold(() => acquireLock(system, lockFile, { waitMs: 5000 }));
  const [, releaseMs] = await timeCold(() => lock.release());
  const [, recordWriteMs] = await timeCold(() => system.writeFileAtomic(join(scratchDir, 'profile.record.json'), '{"x":1}\n', 0o644));
  // One poll of a live process as stop's wait does it (readProcess: stat, cmdline, exe, stat)
  // against reading its stat file alone.
  const [, readProcessMs] = await timeCold(async () => {
    for (let i = 0; i < 100; i += 1) await proc.readProcess(system, process.pid);
  });
  const [, readStatMs] = await timeCold(async () => {
    for (let i = 0; i < 100; i += 1) await system.readFile(`/proc/${process.pid}/stat`);
  });
  return {
    instances: model.instances.length,
    load_model_ms: loadModelMs, load_model_warm_ms: loadModelWarmMs,
    processes_on_machine: processes.length, proc_scan_ms: scanMs, proc_scan_warm_ms: scanWarmMs,
    records_ms: recordsMs, fpm_config_import_ms: fpmConfigImportMs, fpm_configs_ms: fpmConfigsMs,
    lock_ms: lockMs, lock_release_ms: releaseMs, record_write_fsync_ms: recordWriteMs,
    read_process_x100_ms: readProcessMs, read_stat_x100_ms: readStatMs,
  };
}

function argument(value: string | undefined, what: string): string {
  if (value === undefined) throw new Error(`profile-child: ${mode ?? '(no mode)'} needs ${what}`);
  return value;
}

const result =
  mode === 'command'
    ? await runCommand(profiledCommand(rest[0]), argument(rest[1], 'a declaration file'))
    : await pieces(argument(rest[0], 'a declaration file'), argument(rest[1], 'a scratch directory'));
process.stdout.write(`${JSON.stringify(result)}\n`);
