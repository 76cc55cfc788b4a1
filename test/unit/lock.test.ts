import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE } from '../../src/exit-codes.js';
import { acquireLock, FLOCK_PROGRAM, LockError, LockTimeoutError, type HeldLock } from '../../src/process/lock.js';
import { createRealSystem, type RunOptions } from '../../src/process/system.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const system = createRealSystem();
let dir = '';
let modules = '';
const held: HeldLock[] = [];
const contenders: ChildProcess[] = [];
const grandchildren: number[] = [];

/** src/process/lock.ts and what it imports, transpiled to plain ESM (same layout) so a separate `node` can load it. */
function transpileLockModules(outDir: string): void {
  const pending = ['process/lock.ts'];
  const done = new Set<string>();
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (done.has(file)) continue;
    done.add(file);
    const source = readFileSync(join(SRC, file), 'utf8');
    for (const match of source.matchAll(/from '(\.\.?\/[\w/-]+)\.js'/g)) pending.push(posix.normalize(posix.join(posix.dirname(file), `${match[1]}.ts`)));
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const output = join(outDir, file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(output), { recursive: true });
    writeFileSync(output, outputText);
  }
}

// A second controller: takes the lock, reports as JSON lines, holds it for HOLD ms (-1: until killed).
const CONTENDER = `
import { spawn } from 'node:child_process';
const [modules, path, waitMs, holdMs, withGrandchild] = process.argv.slice(2);
const { acquireLock } = await import(modules + '/process/lock.js');
const { createRealSystem } = await import(modules + '/process/system.js');
const say = (event) => process.stdout.write(JSON.stringify({ ...event, at: Date.now() }) + '\\n');
say({ event: 'waiting' });
try {
  const lock = await acquireLock(createRealSystem(), path, { waitMs: Number(waitMs) });
  if (withGrandchild === 'yes') {
    const child = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
    child.unref();
    say({ event: 'grandchild', pid: child.pid });
  }
  say({ event: 'acquired', pid: process.pid });
  if (Number(holdMs) >= 0) setTimeout(async () => { await lock.release(); say({ event: 'released' }); }, Number(holdMs));
  else setInterval(() => {}, 1 << 30);
} catch (error) {
  say({ event: 'error', name: error.name, message: error.message, holderPid: error.holderPid ?? null });
  process.exitCode = 1;
}
`;

interface Event {
  event: string;
  at: number;
  pid?: number;
  name?: string;
  message?: string;
  holderPid?: number | null;
}

class Contender {
  readonly child: ChildProcess;
  private readonly events: Event[] = [];
  private readonly waiters: Array<() => void> = [];

  constructor(path: string, waitMs: number, holdMs: number, withGrandchild = false) {
    this.child = spawn(process.execPath, [join(dir, 'contender.mjs'), modules, path, String(waitMs), String(holdMs), withGrandchild ? 'yes' : 'no'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    contenders.push(this.child);
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const event = JSON.parse(line) as Event;
      if (event.event === 'grandchild' && event.pid !== undefined) grandchildren.push(event.pid);
      this.events.push(event);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  async next(kind: string, timeoutMs = 15_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.event === kind || e.event === 'error');
      if (found !== undefined) {
        if (found.event !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(found)}`);
        return found;
      }
      if (Date.now() > deadline) throw new Error(`no ${kind} event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

beforeAll(() => {
  if (!existsSync(FLOCK_PROGRAM)) throw new Error(`${FLOCK_PROGRAM} is missing: install util-linux`);
  dir = mkdtempSync(join(tmpdir(), 'lock-test-'));
  modules = join(dir, 'modules');
  mkdirSync(modules);
  transpileLockModules(modules);
  writeFileSync(join(dir, 'contender.mjs'), CONTENDER);
});
afterEach(async () => {
  for (const lock of held.splice(0)) await lock.release();
  for (const child of contenders.splice(0)) child.kill('SIGKILL');
  for (const pid of grandchildren.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function take(path: string, waitMs: number): Promise<HeldLock> {
  const lock = await acquireLock(system, path, { waitMs });
  held.push(lock);
  return lock;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the lock to be refused');
}

describe('acquireLock in one process', () => {
  test('takes, records our pid, releases, takes again; the file is created 0600', async () => {
    const path = join(dir, 'single.lock');
    const lock = await take(path, 1000);
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await lock.release();
    await lock.release(); // idempotent
    expect(readFileSync(path, 'utf8')).toBe('');
    await (await take(path, 0)).release();
  });

  test('is not re-entrant: a second take in the same process waits, then times out naming the holder', async () => {
    const path = join(dir, 'reentrant.lock');
    await take(path, 1000);
    const started = Date.now();
    const error = await failure(take(path, 400));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as LockTimeoutError).exitCode).toBe(EXIT_FAILURE);
    expect((error as LockTimeoutError).holderPid).toBe(process.pid);
    expect(error.message).toContain(`timed out after 0.4 s waiting for the lock ${path}, held by pid ${process.pid} (`);
    expect(elapsed).toBeGreaterThanOrEqual(380);
    expect(elapsed).toBeLessThan(3000);
    const now = await failure(take(path, 0));
    expect(now.message).toContain(`could not take the lock ${path}`);
  });

  test('refuses a symlinked, foreign-readable or missing-directory lock file', async () => {
    const target = join(dir, 'target');
    writeFileSync(target, '');
    symlinkSync(target, join(dir, 'symlink.lock'));
    const symlinked = await failure(take(join(dir, 'symlink.lock'), 0));
    expect(symlinked).toBeInstanceOf(LockError);
    expect(symlinked.message).toContain('is a symlink');
    writeFileSync(join(dir, 'open.lock'), '', { mode: 0o644 });
    chmodSync(join(dir, 'open.lock'), 0o644);
    expect((await failure(take(join(dir, 'open.lock'), 0))).message).toContain('can be opened by other users (mode 0644)');
    expect((await failure(take(join(dir, 'nodir', 'x.lock'), 0))).message).toContain('its directory does not exist');
  });
});

describe('acquireLock between real processes', () => {
  test('a second controller waits and times out naming the holder; the holder SIGKILLed, a third gets the lock at once', async () => {
    const path = join(dir, 'contended.lock');
    const holder = new Contender(path, 5000, -1);
    const acquired = await holder.next('acquired');

    const loser = new Contender(path, 500, -1);
    const waited = await loser.next('waiting');
    const timedOut = await loser.next('error');
    expect(timedOut.name).toBe('LockTimeoutError');
    expect(timedOut.holderPid).toBe(acquired.pid);
    expect(timedOut.message).toContain(`the lock ${path}, held by pid ${acquired.pid}`);
    expect(timedOut.at - waited.at).toBeGreaterThanOrEqual(480);

    const next = new Contender(path, 20_000, -1);
    await next.next('waiting');
    await new Promise((r) => setTimeout(r, 300)); // it is blocked in flock now
    const killedAt = Date.now();
    holder.child.kill('SIGKILL');
    const got = await next.next('acquired');
    expect(got.at - killedAt).toBeLessThan(1500); // released by the kernel, not by a timeout
    expect(readFileSync(path, 'utf8')).toBe(`${got.pid}\n`);
  });

  test('a released lock passes to the waiter', async () => {
    const path = join(dir, 'handover.lock');
    const first = new Contender(path, 5000, 400);
    await first.next('acquired');
    const second = new Contender(path, 10_000, -1);
    const released = await first.next('released');
    const got = await second.next('acquired');
    expect(got.at - released.at).toBeLessThan(1500);
  });

  test('children started while holding the lock do not inherit it (close-on-exec)', async () => {
    const path = join(dir, 'cloexec.lock');
    const holder = new Contender(path, 5000, -1, true);
    const grandchild = await holder.next('grandchild');
    await holder.next('acquired');
    holder.child.kill('SIGKILL');
    await (await take(path, 3000)).release();
    // The grandchild (like a php-fpm master started under the lock) is still alive, without the lock.
    expect(() => process.kill(grandchild.pid ?? -1, 0)).not.toThrow();
  });
});

describe('acquireLock with a fake system', () => {
  function fake(exitCode: number | null, stderr = '', timedOut = false) {
    const system = new FakeSystem().addDirectories('/run/php-fpm-multi');
    const calls: Array<{ program: string; args: readonly string[]; options: RunOptions }> = [];
    system.runHandler = (program, args, options) => {
      calls.push({ program, args, options });
      return { exitCode, signal: timedOut ? 'SIGKILL' : null, stdout: '', stderr, timedOut };
    };
    return { system, calls };
  }
  const PATH = '/run/php-fpm-multi/lock';

  test('runs util-linux flock on our descriptor with the wait in seconds, or --nonblock', async () => {
    const { system, calls } = fake(0);
    const lock = await acquireLock(system, PATH, { waitMs: 2500 });
    expect(await system.readFile(PATH)).toBe(`${system.pid}\n`);
    await lock.release();
    await (await acquireLock(system, PATH, { waitMs: 0 })).release();
    expect(calls.map((c) => [c.program, ...c.args])).toEqual([
      [FLOCK_PROGRAM, '--exclusive', '--wait', '2.5', '--conflict-exit-code', '100', '3'],
      [FLOCK_PROGRAM, '--exclusive', '--nonblock', '--conflict-exit-code', '100', '3'],
    ]);
    expect(calls[0]?.options).toMatchObject({ env: {}, fd3: expect.any(Number) });
  });

  test('the conflict exit code is a LockTimeoutError naming the recorded holder', async () => {
    const { system } = fake(100);
    system.addFile(PATH, '4242\n', { mode: 0o600 });
    system.addProcess({ pid: 4242, cmdline: 'node\0/usr/bin/php-fpm-multi\0start\0' });
    const error = await failure(acquireLock(system, PATH, { waitMs: 1000 }));
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.message).toContain(`timed out after 1 s waiting for the lock ${PATH}, held by pid 4242 (node /usr/bin/php-fpm-multi start)`);
  });

  test('other flock failures are LockErrors with its message', async () => {
    const { system } = fake(64, 'flock: bad option\n');
    const error = await failure(acquireLock(system, PATH, { waitMs: 10 }));
    expect(error).toBeInstanceOf(LockError);
    expect(error.message).toContain('failed (exit 64): flock: bad option');
    const hung = await failure(acquireLock(fake(null, '', true).system, PATH, { waitMs: 10 }));
    expect(hung.message).toContain('hung and was killed');
  });

  test('a lock file replaced while we waited is locked again, the new one', async () => {
    const { system, calls } = fake(0);
    let replaced = false;
    system.runHandler = (program, args, options) => {
      calls.push({ program, args, options });
      if (!replaced) {
        replaced = true; // someone removed and recreated the file while flock waited
        system.addFile(PATH, '', { mode: 0o600 });
      }
      return { exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false };
    };
    const lock = await acquireLock(system, PATH, { waitMs: 1000 });
    expect(calls).toHaveLength(2);
    expect(await system.readFile(PATH)).toBe(`${system.pid}\n`);
    await lock.release();
  });

  test('a lock file owned by someone else is refused', async () => {
    const { system } = fake(0);
    system.addFile(PATH, '', { mode: 0o600, uid: 33 });
    expect((await failure(acquireLock(system, PATH))).message).toContain('is owned by uid 33');
  });
});
