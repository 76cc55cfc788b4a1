// Scratch PHP-FPM instances for integration tests: real php-fpm configs in a temporary
// directory, real FastCGI requests through cgi-fcgi, and a cleanup that leaves no process behind.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { encodeRecord, FastCgiRecordReader, FcgiRecordType } from '../../src/fastcgi/records.js';
import { decodeNameValuePairs } from '../../src/fastcgi/params.js';
import type { System } from '../../src/process/system.js';

export const PHP_FPM = '/usr/sbin/php-fpm8.2';
export const CGI_FCGI = '/usr/bin/cgi-fcgi';
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
/** Debian's prometheus package; scripts/setup --with-test-tools installs it. */
export const PROMTOOL = '/usr/bin/promtool';

/** Integration tests need the real programs: their absence fails the test, loudly. */
export function requirePrograms(...programs: string[]): void {
  for (const program of programs) {
    expect(existsSync(program), `${program} is missing: run scripts/test, which installs it`).toBe(true);
  }
}

export interface FpmScratch {
  dir: string;
  decl: string;
  runDir: string;
  /** Writes a php-fpm config for instance `name` (one pool on a unix socket) and returns its path. */
  writeConfig(name: string, extra?: string): string;
  socket(name: string): string;
  /** Writes the declaration file. */
  declare(text: string): void;
  remove(): void;
}

export function makeFpmScratch(): FpmScratch {
  const dir = mkdtempSync('/tmp/php-fpm-multi-it-');
  chmodSync(dir, 0o755); // php-fpm's workers (www-data) reach the socket and the script through it
  const runDir = join(dir, 'run');
  writeFileSync(join(dir, 'index.php'), '<?php echo "hello from ", $_SERVER["INSTANCE"] ?? "?", "\\n";');
  const scratch: FpmScratch = {
    dir,
    decl: join(dir, 'php-fpm'),
    runDir,
    socket: (name) => join(dir, name, 'php-fpm.sock'),
    writeConfig(name, extra = '') {
      mkdirSync(join(dir, name), { recursive: true, mode: 0o755 });
      const config = join(dir, name, 'php-fpm.conf');
      writeFileSync(
        config,
        [
          '[global]', `error_log = ${join(dir, name, 'error.log')}`, '',
          `[${name}]`, 'user = www-data', 'group = www-data', `listen = ${scratch.socket(name)}`,
          'pm = static', 'pm.max_children = 2', `env[INSTANCE] = ${name}`, extra, '',
        ].join('\n'),
      );
      return config;
    },
    declare(text) {
      writeFileSync(scratch.decl, `${text}\nFPM_run_dir=${runDir}\n`);
    },
    remove() {
      killProcessesUnder(dir);
      forgetRunDirPointersUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return scratch;
}

/**
 * start remembers a declaration file's run directory in its default one (/run/php-fpm-multi/<file
 * name>/last-run-dir.*.json, src/process/last-run-dir.ts); a test's files are gone after it, so
 * are their pointers. Only pointers naming a file under `dir` are removed; the directories stay
 * (another command may be creating its lock in one of them).
 */
function forgetRunDirPointersUnder(dir: string): void {
  const base = '/run/php-fpm-multi';
  let services: string[];
  try {
    services = readdirSync(base);
  } catch {
    return;
  }
  for (const service of services) {
    let entries: string[];
    try {
      entries = readdirSync(join(base, service)).filter((entry) => entry.startsWith('last-run-dir.'));
    } catch {
      continue;
    }
    for (const entry of entries) {
      const file = join(base, service, entry);
      try {
        const pointer = JSON.parse(readFileSync(file, 'utf8')) as { declaration?: unknown };
        if (typeof pointer.declaration === 'string' && pointer.declaration.startsWith(`${dir}/`)) rmSync(file, { force: true });
      } catch {
        // removed meanwhile, or not a pointer: not ours
      }
    }
  }
}

/** Declares instances `names` in the string form, each with its own fresh config. */
export function declareInstances(scratch: FpmScratch, names: readonly string[], keys = ''): void {
  scratch.declare(names.map((name) => `FPM_slot_${name}="slot=8.2 config=${scratch.writeConfig(name)} ${keys}"`).join('\n'));
}

/** A real FastCGI request for index.php through cgi-fcgi; returns the body (or the failure). */
export function requestPhp(scratch: FpmScratch, name: string): string {
  const result = spawnSync(CGI_FCGI, ['-bind', '-connect', scratch.socket(name)], {
    env: { SCRIPT_FILENAME: join(scratch.dir, 'index.php'), REQUEST_METHOD: 'GET', SCRIPT_NAME: '/index.php' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  const body = result.stdout.split(/\r?\n\r?\n/).slice(1).join('\n\n').trim();
  return result.status === 0 ? body : `cgi-fcgi failed (${result.status}): ${result.stderr}`;
}

export interface ScratchProcess {
  pid: number;
  title: string;
  state: string;
}

/** Live (not zombie) processes whose command line mentions `dir`: masters name their config. */
export function listProcessesUnder(dir: string): ScratchProcess[] {
  const found: ScratchProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (title.includes(dir) && state !== 'Z' && Number(entry) !== process.pid) found.push({ pid: Number(entry), title, state });
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** The parent pid of `pid` (0 when it is gone). */
function readParentPid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** php-fpm masters of the scratch dir, and the workers of their pools (by session). */
export function listFpmProcesses(dir: string): ScratchProcess[] {
  const titled = listProcessesUnder(dir).filter((p) => p.title.startsWith('php-fpm: master process'));
  // A worker php-fpm has just forked carries its master's title until it renames itself: a
  // "master" whose parent is a master of the list is such a worker, not a second master.
  const pids = new Set(titled.map((p) => p.pid));
  const masters = titled.filter((p) => !pids.has(readParentPid(p.pid)));
  const sessions = new Set(masters.map((m) => m.pid));
  const workers: ScratchProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (fields[0] !== 'Z' && sessions.has(Number(fields[3])) && title.startsWith('php-fpm: pool')) {
        workers.push({ pid: Number(entry), title, state: fields[0]! });
      }
    } catch {
      // exited while we looked
    }
  }
  return [...masters, ...workers];
}

/** Fake php-fpm workers (test/fixtures/fake-fpm) of a config under `dir`, even when their master died. */
function listFakeWorkersUnder(dir: string): ScratchProcess[] {
  const found: ScratchProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.some((v) => v.startsWith('FAKE_FPM_CONFIG=') && v.includes(dir))) found.push({ pid: Number(entry), title: 'fake worker', state: '?' });
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** Leaves nothing behind: every master of the scratch dir, its session, and anything naming it. */
export function killProcessesUnder(dir: string): void {
  const masters = listProcessesUnder(dir);
  for (const proc of [...masters, ...listFpmProcesses(dir), ...listFakeWorkersUnder(dir)]) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function masterPid(scratch: FpmScratch, name: string): number {
  return Number(readFileSync(join(scratch.runDir, `${name}.pid`), 'utf8'));
}

/** Runs the compiled CLI as its own process (real concurrency, real exit codes). */
export function runCliProcess(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A TCP port nothing listens on right now on 127.0.0.1 (for a pool's listen). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was assigned');
  return address.port;
}

export interface FakePool {
  /** The CGI params of every request received, in order. */
  requests: Array<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * A FastCGI responder on a unix socket, standing in for a php-fpm pool: every request is answered
 * with `answer(params)` as a CGI response (status 200 unless given), then END_REQUEST.
 */
export async function serveFakePool(path: string, answer: (params: Record<string, string>) => { status?: number; body: string }): Promise<FakePool> {
  const requests: FakePool['requests'] = [];
  const server: Server = createServer((socket) => {
    const reader = new FastCgiRecordReader();
    let params = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      reader.pushBytes(chunk);
      for (let record = reader.readRecord(); record !== null; record = reader.readRecord()) {
        if (record.type === FcgiRecordType.PARAMS) params = Buffer.concat([params, record.content]);
        if (record.type !== FcgiRecordType.STDIN || record.content.length > 0) continue;
        const request = Object.fromEntries(decodeNameValuePairs(params));
        requests.push(request);
        const { status = 200, body } = answer(request);
        const endRequest = Buffer.alloc(8); // appStatus 0, FCGI_REQUEST_COMPLETE
        socket.end(Buffer.concat([
          encodeRecord(FcgiRecordType.STDOUT, record.requestId, Buffer.from(`Status: ${status} Fake\r\nContent-Type: text/plain\r\n\r\n${body}`)),
          encodeRecord(FcgiRecordType.END_REQUEST, record.requestId, endRequest),
        ]));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return { requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * The system with kernel socket tables that list no listener: for fault injection that squats a
 * pool's address on purpose (a test playing the pool, a port taken to make a launch or a reload
 * fail), past the controller's own check of who holds a listen address (src/process/listeners.ts).
 */
export function hideListeningSockets(system: System): System {
  return { ...system, readFile: (path, limits) => (/^\/proc\/net\/(unix|tcp6?)$/.test(path) ? Promise.resolve('header\n') : system.readFile(path, limits)) };
}
