import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRealSystem, errnoCode, SpawnError } from '../../src/process/system.js';

const system = createRealSystem();
let dir = '';
const strays: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'system-test-'));
});
afterAll(() => {
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('createRealSystem', () => {
  test('knows who it is', () => {
    expect(system.pid).toBe(process.pid);
    expect(system.uid).toBe(process.getuid?.());
    const stat = readFileSync('/proc/self/stat', 'utf8');
    expect(system.processGroupId).toBe(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]));
  });

  test('run: exit code, output, and exactly the environment given', async () => {
    const result = await system.run('/bin/sh', ['-c', 'echo "$GREETING ${HOME-no home}"; echo oops >&2; exit 3'], {
      env: { GREETING: 'hello world' },
      timeoutMs: 10_000,
    });
    expect(result).toEqual({ exitCode: 3, signal: null, stdout: 'hello world no home\n', stderr: 'oops\n', timedOut: false });
  });

  test('run: a program that outlives its timeout is SIGKILLed', async () => {
    const started = Date.now();
    const result = await system.run('/bin/sleep', ['10'], { env: {}, timeoutMs: 200 });
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL', timedOut: true });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('run: a daemon keeping our stdout open does not hold us after the launcher exits', async () => {
    const started = Date.now();
    const result = await system.run('/bin/sh', ['-c', 'sleep 30 & echo $!'], { env: {}, timeoutMs: 10_000 });
    strays.push(Number(result.stdout.trim()));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^\d+\n$/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('run: a missing program is a SpawnError naming it', async () => {
    await expect(system.run('/nonexistent/php-fpm', [], { env: {}, timeoutMs: 1000 })).rejects.toThrow(SpawnError);
    await expect(system.run('/nonexistent/php-fpm', [], { env: {}, timeoutMs: 1000 })).rejects.toThrow('cannot run /nonexistent/php-fpm');
  });

  test('kill reports ESRCH for a missing process instead of throwing', () => {
    // 4194304 = PID_MAX_LIMIT: never allocated (pids stay below pid_max), so certainly absent.
    expect(system.kill(4_194_304, 'SIGTERM')).toBe('ESRCH');
  });

  test('writeFileAtomic replaces content with the exact mode and leaves no temporary file', async () => {
    const path = join(dir, 'record.json');
    writeFileSync(path, 'old');
    await system.writeFileAtomic(path, '{"pid":1}\n', 0o640);
    expect(readFileSync(path, 'utf8')).toBe('{"pid":1}\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // A symlink at the path is replaced by the file, never written through.
    writeFileSync(join(dir, 'victim'), 'keep');
    symlinkSync(join(dir, 'victim'), join(dir, 'link.json'));
    await system.writeFileAtomic(join(dir, 'link.json'), 'new', 0o644);
    expect(readFileSync(join(dir, 'victim'), 'utf8')).toBe('keep');
    expect(lstatSync(join(dir, 'link.json')).isFile()).toBe(true);
  });

  test('mkdir sets the exact mode; fs errors carry their errno code', async () => {
    const path = join(dir, 'made');
    await system.mkdir(path, 0o755);
    expect(statSync(path).mode & 0o7777).toBe(0o755);
    const exists = await system.mkdir(path, 0o755).catch((e: unknown) => e);
    expect(errnoCode(exists)).toBe('EEXIST');
    expect(errnoCode(await system.readFile(join(dir, 'missing')).catch((e: unknown) => e))).toBe('ENOENT');
    expect(await system.lstat(path)).toMatchObject({ kind: 'directory', mode: 0o755, uid: system.uid });
  });
});
