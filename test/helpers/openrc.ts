// Helpers for the end-to-end tests with the real OpenRC and the real php-fpm8.2: running
// rc-service (under dash, or in a private mount namespace where /bin/sh is bash), scratch
// directories with php-fpm instances, FastCGI requests, and finding leftover processes.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync,
  rmSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const CLI = join(REPO, 'dist', 'cli.js');
export const RUNSCRIPT_TEMPLATE = join(REPO, 'init.d', 'php-fpm.in');
export const INSTALL_SCRIPT = join(REPO, 'scripts', 'install.sh');
export const CONF_EXAMPLE = join(REPO, 'conf.d', 'php-fpm');

export const OPENRC_RUN = '/sbin/openrc-run';
export const PHP_FPM = '/usr/sbin/php-fpm8.2';
/** Where OpenRC keeps its state (RC_SVCDIR) on Debian. */
export const RC_SVCDIR = '/run/openrc';
export const SOFTLEVEL = join(RC_SVCDIR, 'softlevel');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for messages and for looking for text that may be on either. */
  output: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a program and collects its output; never throws for a non-zero exit (the code is data). */
export function run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      env: options.env ?? { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      cwd: options.cwd ?? '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const timeoutMs = options.timeoutMs ?? 50_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' waits for every holder of the pipes: a daemon that kept them open would hang here,
    // which is a bug this test must see (the timeout above reports it).
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr, output: `${stdout}${stderr}` });
    });
  });
}

/** Describes a result for assertion messages. */
export function show(result: RunResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

function findOnPath(name: string): string | null {
  for (const dir of ['/sbin', '/usr/sbin', '/bin', '/usr/bin', ...(process.env['PATH'] ?? '').split(':')]) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/**
 * Fails loudly (never skips) when a tool the end-to-end tests need is missing: these tests are
 * the proof that the runscript works with the real OpenRC and php-fpm.
 */
export function requireTools(extra: readonly string[] = []): void {
  const missing: string[] = [];
  if (!existsSync(OPENRC_RUN)) missing.push(`${OPENRC_RUN} (Debian package openrc)`);
  if (findOnPath('rc-service') === null) missing.push('rc-service (Debian package openrc)');
  if (!existsSync(PHP_FPM)) missing.push(`${PHP_FPM} (Debian package php8.2-fpm)`);
  if (findOnPath('cgi-fcgi') === null) missing.push('cgi-fcgi (Debian package libfcgi-bin)');
  if (findOnPath('unshare') === null) missing.push('unshare (Debian package util-linux)');
  for (const tool of extra) if (findOnPath(tool) === null) missing.push(tool);
  if (!existsSync(CLI)) missing.push(`${CLI} (build it: scripts/setup)`);
  if (missing.length > 0) {
    throw new Error(`the OpenRC end-to-end tests need: ${missing.join(', ')}; run scripts/test (it installs them), as root`);
  }
  if (process.getuid?.() !== 0) throw new Error('the OpenRC end-to-end tests run rc-service and install into /etc: run them as root');
}

/**
 * OpenRC refuses to run services on a machine it did not boot until $RC_SVCDIR/softlevel exists.
 * Creates it when missing; restore() removes it only if it was created here.
 */
export function ensureSoftlevel(): { restore(): void } {
  if (existsSync(SOFTLEVEL)) return { restore: () => undefined };
  mkdirSync(RC_SVCDIR, { recursive: true });
  writeFileSync(SOFTLEVEL, '');
  return { restore: () => rmSync(SOFTLEVEL, { force: true }) };
}

/** Is the service marked started in OpenRC's state? */
export function isMarkedStarted(service: string): boolean {
  return existsSync(join(RC_SVCDIR, 'started', service));
}

/** The runscript with its install-time paths, exactly as scripts/install.sh renders it. */
export function renderRunscript(paths: { eprefix: string; bindir: string; sysconfdir: string }): string {
  return readFileSync(RUNSCRIPT_TEMPLATE, 'utf8')
    .replace(/^#!\/sbin\/openrc-run/, `#!${paths.eprefix}/sbin/openrc-run`)
    .replaceAll('@BINDIR@', paths.bindir)
    .replaceAll('@SYSCONFDIR@', paths.sysconfdir);
}

export interface Scratch {
  dir: string;
  /** A word in every path and pool name of this scratch directory: finds its processes. */
  token: string;
  remove(): void;
}

/** A scratch directory that php-fpm workers (www-data) can traverse. */
export function makeScratch(label: string): Scratch {
  const token = `pfm${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(`/tmp/php-fpm-multi-${label}-${token}-`);
  chmodSync(dir, 0o755);
  return { dir, token, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface FpmInstance {
  /** The declared name (FPM_slot_<name>). */
  name: string;
  dir: string;
  config: string;
  socket: string;
  errorLog: string;
  pool: string;
  /** Where the test PHP script lives. */
  script: string;
}

/**
 * Writes a php-fpm configuration for one instance: one static pool of one worker as www-data,
 * listening on a unix socket in the scratch directory, and a PHP script that names the instance.
 * `listenDir` puts the socket elsewhere (below a file: start refuses that instance).
 */
export function writeFpmInstance(scratch: Scratch, group: string, name: string, options: { listenDir?: string } = {}): FpmInstance {
  const dir = join(scratch.dir, group, name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(join(scratch.dir, group), 0o755);
  chmodSync(dir, 0o755);
  const socket = join(options.listenDir ?? dir, 'php-fpm.sock');
  const errorLog = join(dir, 'error.log');
  const pool = `${scratch.token}-${group}-${name}`;
  const config = join(dir, 'php-fpm.conf');
  writeFileSync(
    config,
    [
      '[global]',
      `error_log = ${errorLog}`,
      // Requests in flight finish on a graceful stop (check warns without it).
      'process_control_timeout = 10s',
      '',
      `[${pool}]`,
      'user = www-data',
      'group = www-data',
      `listen = ${socket}`,
      'pm = static',
      'pm.max_children = 1',
      `env[INSTANCE] = ${name}`,
      '',
    ].join('\n'),
  );
  const script = join(dir, 'index.php');
  writeFileSync(script, '<?php echo "instance=", getenv("INSTANCE"), " pid=", getmypid(), "\\n";\n');
  chmodSync(script, 0o644);
  return { name, dir, config, socket, errorLog, pool, script };
}

/** The declaration file text, in bash's array form or the POSIX string form. */
export function declarationText(form: 'array' | 'string', instances: readonly FpmInstance[], runDir: string): string {
  const lines = [`# php-fpm-multi end-to-end test (${form} form)`];
  for (const instance of instances) {
    lines.push(
      form === 'array'
        ? `FPM_slot_${instance.name}=(\n    "slot=php8.2"\n    "config=${instance.config}"   # a comment between words\n)`
        : `FPM_slot_${instance.name}="slot=8.2 config=${instance.config}"`,
    );
  }
  lines.push(`FPM_run_dir="${runDir}"`, '');
  return lines.join('\n');
}

/** Asks the instance for the test script over FastCGI and returns the body. */
export async function fcgiGet(instance: FpmInstance): Promise<string> {
  const result = await run('cgi-fcgi', ['-bind', '-connect', instance.socket], {
    env: {
      PATH: '/usr/bin:/bin',
      SCRIPT_FILENAME: instance.script,
      SCRIPT_NAME: '/index.php',
      REQUEST_METHOD: 'GET',
      QUERY_STRING: '',
      SERVER_PROTOCOL: 'HTTP/1.1',
    },
    timeoutMs: 10_000,
  });
  if (result.code !== 0) throw new Error(`no answer from ${instance.name} on ${instance.socket}: ${show(result)}`);
  return result.stdout.replace(/^[\s\S]*?\r?\n\r?\n/, '');
}

export interface ProcessEntry {
  pid: number;
  cmdline: string;
}

/**
 * Every php-fpm process whose command line contains one of the needles (a master names its
 * config file, a worker its pool): the scratch token finds all of them.
 */
export function findProcesses(needles: string | readonly string[]): ProcessEntry[] {
  const list = typeof needles === 'string' ? [needles] : needles;
  const found: ProcessEntry[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue;
    }
    if (cmdline.startsWith('php-fpm') && list.some((needle) => cmdline.includes(needle))) found.push({ pid: Number(entry), cmdline });
  }
  return found;
}

/** Last resort of a cleanup: SIGKILL every php-fpm process of the scratch directory. */
export function killProcesses(token: string): ProcessEntry[] {
  const found = findProcesses(token);
  for (const { pid } of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return found;
}

/** Waits until no process of the token is left (killed processes take a moment to go). */
export async function waitForNoProcesses(token: string | readonly string[], timeoutMs = 5_000): Promise<ProcessEntry[]> {
  const deadline = Date.now() + timeoutMs;
  let found = findProcesses(token);
  while (found.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    found = findProcesses(token);
  }
  return found;
}

/** The directory holding the /bin/sh symlink (/usr/bin on merged-/usr systems). */
function shellDirectory(): string {
  const dir = realpathSync('/bin');
  if (!lstatSync(join(dir, 'sh')).isSymbolicLink()) throw new Error(`${dir}/sh is not a symlink: cannot point it at bash`);
  return dir;
}

export type SystemShell = 'dash' | 'bash';

/**
 * The command line that runs `program args…` with /bin/sh being what it is (dash on Debian), or
 * bash as on Gentoo: in a private mount namespace, an overlay on /bin/sh's directory whose only
 * change is the symlink sh -> bash. Each call gets its own overlay directories (php-fpm masters
 * started inside keep their namespace, and with it their overlay, alive).
 */
export function withShell(shell: SystemShell, scratch: Scratch, program: string, args: readonly string[]): [string, string[]] {
  if (shell === 'dash') return [program, [...args]];
  const dir = shellDirectory();
  const overlay = mkdtempSync(join(scratch.dir, 'sh-overlay-'));
  const upper = join(overlay, 'upper');
  const work = join(overlay, 'work');
  mkdirSync(upper);
  mkdirSync(work);
  symlinkSync(realpathSync('/bin/bash'), join(upper, 'sh'));
  const script = 'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$1" && shift 3 && exec "$@"';
  return ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, upper, work, program, ...args]];
}

/** rc-service SERVICE COMMAND, with /bin/sh being dash or bash. */
export function rcService(service: string, command: string, shell: SystemShell, scratch: Scratch): Promise<RunResult> {
  const [program, args] = withShell(shell, scratch, 'rc-service', [service, command]);
  return run(program, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TERM: 'dumb' }, timeoutMs: 55_000 });
}

/** The controller of this checkout. */
export function controller(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...env } });
}

export interface StatusEntry {
  name: string;
  state: string;
  pid: number | null;
}

/** `php-fpm-multi --json status`: the state and master pid of every instance. */
export async function controllerStatus(conf: string): Promise<Map<string, StatusEntry>> {
  const result = await controller(['--conf', conf, '--json', 'status']);
  let parsed: { instances: StatusEntry[] };
  try {
    parsed = JSON.parse(result.stdout) as { instances: StatusEntry[] };
  } catch {
    throw new Error(`php-fpm-multi --json status did not print JSON: ${show(result)}`);
  }
  return new Map(parsed.instances.map((entry) => [entry.name, entry]));
}

/** A php-fpm-multi command for the runscript: runs this checkout's controller. */
export function writeControllerWrapper(bindir: string): string {
  mkdirSync(bindir, { recursive: true, mode: 0o755 });
  const wrapper = join(bindir, 'php-fpm-multi');
  writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/** Removes a file or symlink if present. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Whether a path exists, without following a final symlink. */
export function lexists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Where a symlink points, or null. */
export function linkTarget(file: string): string | null {
  try {
    return readlinkSync(file);
  } catch {
    return null;
  }
}

/**
 * Undoes an OpenRC service of the tests, whatever state a failed test left it in: stops its
 * instances with the controller, forgets OpenRC's state (zap), removes the runscript and conf.d
 * file, and kills any php-fpm process of the scratch directory that is still there.
 */
export async function cleanupService(service: string, files: { runscript: string; conf: string }, scratch: Scratch): Promise<string[]> {
  const notes: string[] = [];
  if (existsSync(files.conf) && existsSync(CLI)) {
    const stopped = await controller(['--conf', files.conf, 'stop']).catch((error: unknown) => ({ code: -1, output: String(error) }));
    if (stopped.code !== 0) notes.push(`php-fpm-multi stop: ${stopped.output}`);
  }
  if (existsSync(files.runscript) && (isMarkedStarted(service) || existsSync(join(RC_SVCDIR, 'failed', service)))) {
    await run('rc-service', [service, 'zap'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).catch(() => undefined);
  }
  for (const dir of ['started', 'failed', 'starting', 'stopping', 'inactive', 'wasinactive', 'scheduled']) {
    removeFile(join(RC_SVCDIR, dir, service));
  }
  rmSync(join(RC_SVCDIR, 'options', service), { recursive: true, force: true });
  removeFile(files.runscript);
  removeFile(files.conf);
  const killed = killProcesses(scratch.token);
  if (killed.length > 0) notes.push(`killed leftover processes: ${killed.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
  await waitForNoProcesses(scratch.token);
  return notes;
}

/**
 * Installs the runscript as `runscript` (in /etc/init.d), calling the controller through a wrapper
 * in the scratch directory, and creates /etc/conf.d when missing. Returns whether it did, for the
 * cleanup to remove only what the test created.
 */
export function installTestRunscript(scratch: Scratch, runscript: string): { createdConfDir: boolean } {
  let createdConfDir = false;
  if (!existsSync('/etc/conf.d')) {
    mkdirSync('/etc/conf.d', { mode: 0o755 });
    createdConfDir = true;
  }
  const bindir = join(scratch.dir, 'bin');
  writeControllerWrapper(bindir);
  writeFileSync(runscript, renderRunscript({ eprefix: '', bindir, sysconfdir: '/etc' }));
  chmodSync(runscript, 0o755);
  return { createdConfDir };
}
