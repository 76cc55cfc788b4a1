// One profiled controller run, for scripts/bench --profile (scripts/bench-lib/profile.mjs).
//
//   node profile-child.mjs DIST command COMMAND DECL   runs one command as dist/cli.js would, in
//        this fresh process, with the real System wrapped to count and time every call; prints
//        JSON: the node bootstrap before this script, the import of the command's modules, the
//        command itself, and what it did (reads of /proc, scans of /proc, spawns, sleeps, signals)
//   node profile-child.mjs DIST pieces DECL SCRATCH     times, cold, the parts a command is made of:
//        reading the declaration, one scan of /proc, the lock, the records, php-fpm configs, and
//        one atomic record write
//
// It only imports the compiled modules (dist/), never changes them.
import { performance } from 'node:perf_hooks';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

// performance.now() when this script starts: node's bootstrap, measured from node's time origin
// (which lies before exec; compare runs with each other, not with wall-clock figures).
const bootMs = performance.now();
const [dist, mode, ...rest] = process.argv.slice(2);
const url = (file) => pathToFileURL(join(dist, file)).href;

async function timeImport(specifier) {
  const started = performance.now();
  const module = await import(specifier);
  return [module, performance.now() - started];
}

/** The real System, every call counted (and spawns timed); the commands accept it as io.system. */
function instrument(real) {
  const stats = { calls: {}, spawns: [], sleeps: 0, kills: 0, firstSpawnAtMs: null, lastSpawnEndMs: null };
  const origin = performance.now();
  const count = (key) => {
    stats.calls[key] = (stats.calls[key] ?? 0) + 1;
  };
  const where = (path) => (path === '/proc' ? '/proc' : path.startsWith('/proc/') ? '/proc/PID/*' : 'other');
  const system = { ...real };
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
  for (const key of ['realpath', 'lstat', 'stat', 'writeFileAtomic', 'unlink', 'mkdir', 'openLockFile']) {
    system[key] = (...args) => {
      count(key);
      return real[key](...args);
    };
  }
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

function summarizeSpawns(spawns) {
  const by = {};
  for (const { what, ms } of spawns) {
    by[what] ??= { count: 0, total_ms: 0, max_ms: 0 };
    by[what].count += 1;
    by[what].total_ms += ms;
    by[what].max_ms = Math.max(by[what].max_ms, ms);
  }
  for (const entry of Object.values(by)) {
    entry.mean_ms = entry.total_ms / entry.count;
  }
  return by;
}

async function runCommand(command, decl) {
  // The ESM loader's own start-up, paid once by any first import, is kept apart from the modules.
  const [, loaderMs] = await timeImport('data:text/javascript,export default 0');
  const file = command === 'status' ? 'commands/status.js' : command === 'list' ? 'commands/list.js' : 'commands/control.js';
  const [cliModule, cliImportMs] = await timeImport(url('cli.js')); // cli.js and what it imports statically
  const [module, commandImportMs] = await timeImport(url(file));
  const { createRealSystem } = await import(url('system.js'));
  const { system, stats } = instrument(createRealSystem());
  let out = 0;
  let err = '';
  const io = { stdout: (t) => void (out += t.length), stderr: (t) => void (err += t), env: { PATH: process.env.PATH }, uid: process.getuid(), system };
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

async function timeCold(fn) {
  const started = performance.now();
  const result = await fn();
  return [result, performance.now() - started];
}

async function pieces(decl, scratchDir) {
  const { loadModel } = await import(url('load.js'));
  const { createRealSystem } = await import(url('system.js'));
  const proc = await import(url('proc.js'));
  const { acquireLock } = await import(url('lock.js'));
  const { readRecords } = await import(url('record.js'));
  const [, fpmConfigImportMs] = await timeImport(url('fpm-config.js'));
  const { loadFpmConfig } = await import(url('fpm-config.js'));
  const system = createRealSystem();
  const env = { PATH: process.env.PATH };
  const [model, loadModelMs] = await timeCold(() => loadModel(decl, env, process.getuid()));
  const [, loadModelWarmMs] = await timeCold(() => loadModel(decl, env, process.getuid()));
  const [processes, scanMs] = await timeCold(() => proc.listProcesses(system));
  const [, scanWarmMs] = await timeCold(() => proc.listProcesses(system));
  const [, recordsMs] = await timeCold(() => readRecords(system, model.runDir));
  const [, fpmConfigsMs] = await timeCold(() => {
    for (const instance of model.instances) loadFpmConfig(instance.config, { env: instance.env, pidFile: instance.pidfile, forceDaemonize: true });
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

const result = mode === 'command' ? await runCommand(rest[0], rest[1]) : await pieces(rest[0], rest[1]);
process.stdout.write(`${JSON.stringify(result)}\n`);
