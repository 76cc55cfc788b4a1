import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE } from '../../src/exit-codes.js';
import { FpmMultiError } from '../../src/errors.js';
import {
  checkPidfileTrust,
  checkRunDirectory,
  ensureRunDirectory,
  parsePidfile,
  PID_MAX_LIMIT,
  PidfileContentError,
  quoteForMessage,
  readTrustedPidfile,
  UntrustedPathError,
} from '../../src/process/pidfile.js';
import { createRealSystem } from '../../src/process/system.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const PATH = '/run/php-fpm-multi/web.pid';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('parsePidfile', () => {
  test.each([
    ['empty', ''],
    ['zero', '0'],
    ['init', '1'],
    ['negative', '-1'],
    ['exponent', '1e3'],
    ['trailing junk', '12abc'],
    ['leading space', ' 12'],
    ['trailing space', '12 '],
    ['leading zero', '012'],
    ['plus sign', '+12'],
    ['above PID_MAX_LIMIT', String(PID_MAX_LIMIT + 1)],
    ['huge', '99999999999999999999999'],
    ['two newlines', '12\n\n'],
    ['only a newline', '\n'],
    ['CRLF', '12\r\n'],
    ['hex', '0x10'],
    ['underscore', '1_000'],
    ['full-width digits', '１２'],
    ['two lines', '12\n13'],
    ['leading newline', '\n12'],
    ['decimal point', '12.0'],
    ['NUL', '12\0'],
  ])('refuses %s: %j', (_name, content) => {
    const error = thrown(() => parsePidfile(content, PATH));
    expect(error).toBeInstanceOf(PidfileContentError);
    expect(error).toBeInstanceOf(FpmMultiError);
    const e = error as PidfileContentError;
    expect(e.exitCode).toBe(EXIT_FAILURE);
    expect(e.path).toBe(PATH);
    expect(e.content).toBe(content);
    expect(e.message).toContain(`pidfile ${PATH}`);
    expect(e.message).toContain(`found ${JSON.stringify(content)}`);
    expect(e.message).toContain(`remove ${PATH}`);
  });

  test.each([
    ['2', 2],
    ['1234', 1234],
    ['1234\n', 1234],
    [String(PID_MAX_LIMIT), PID_MAX_LIMIT],
    [`${PID_MAX_LIMIT}\n`, PID_MAX_LIMIT],
  ])('accepts %j', (content, pid) => {
    expect(parsePidfile(content, PATH)).toBe(pid);
  });

  test('quotes long or binary content escaped and truncated', () => {
    const content = `\u0007${'x'.repeat(5000)}`;
    const message = (thrown(() => parsePidfile(content, PATH)) as Error).message;
    expect(message).toContain('"\\u0007xxx');
    expect(message).toContain('… (5001 characters)');
    expect(message.length).toBeLessThan(400);
    expect(quoteForMessage('a"b\n')).toBe('"a\\"b\\n"');
  });
});

describe('checkPidfileTrust with a fake system', () => {
  function rootSystem(): FakeSystem {
    return new FakeSystem().addDirectories('/run/php-fpm-multi').addDirectory('/tmp', { mode: 0o1777 });
  }

  async function refusal(system: FakeSystem, pidfile: string): Promise<UntrustedPathError> {
    const error = await rejection(checkPidfileTrust(system, pidfile));
    expect(error).toBeInstanceOf(UntrustedPathError);
    expect((error as UntrustedPathError).exitCode).toBe(EXIT_FAILURE);
    expect((error as Error).message).toContain(`pidfile ${pidfile}:`);
    return error as UntrustedPathError;
  }

  test('a root-owned pidfile in a root-owned 0755 directory is trusted and read', async () => {
    const system = rootSystem().addFile(PATH, '4321');
    expect(await checkPidfileTrust(system, PATH)).toEqual({ exists: true });
    expect(await readTrustedPidfile(system, PATH)).toBe(4321);
  });

  test('a missing pidfile, or a missing directory, means no pid', async () => {
    const system = rootSystem();
    expect(await checkPidfileTrust(system, PATH)).toEqual({ exists: false });
    expect(await readTrustedPidfile(system, PATH)).toBeNull();
    expect(await readTrustedPidfile(system, '/run/nothing/here/x.pid')).toBeNull();
  });

  test('bad content in a trusted pidfile is a PidfileContentError', async () => {
    const system = rootSystem().addFile(PATH, '12 ');
    expect(await rejection(readTrustedPidfile(system, PATH))).toBeInstanceOf(PidfileContentError);
  });

  test('refuses a pidfile that is a symlink', async () => {
    const system = rootSystem().addFile('/run/real.pid', '4321').addSymlink(PATH, '/run/real.pid');
    const error = await refusal(system, PATH);
    expect(error.path).toBe(PATH);
    expect(error.message).toContain('is a symlink');
  });

  test('refuses a pidfile whose directory is a symlink', async () => {
    const system = rootSystem().addDirectory('/run/real').addFile('/run/real/web.pid', '4321').addSymlink('/run/link', '/run/real');
    const error = await refusal(system, '/run/link/web.pid');
    expect(error.path).toBe('/run/link');
    expect(error.message).toContain('is a symlink');
  });

  test('follows a root-owned symlink higher up (Debian /var/run -> /run)', async () => {
    const system = rootSystem().addDirectory('/var').addSymlink('/var/run', '../run').addFile(PATH, '4321');
    expect(await readTrustedPidfile(system, '/var/run/php-fpm-multi/web.pid')).toBe(4321);
  });

  test('refuses a pidfile owned by another user', async () => {
    const system = rootSystem().addFile(PATH, '4321', { uid: 33 });
    const error = await refusal(system, PATH);
    expect(error.message).toContain('is owned by uid 33, not root');
    expect(error.message).toContain(`remove ${PATH}`);
  });

  test.each([0o666, 0o646, 0o664, 0o624])('refuses a pidfile writable by group or others (mode %o)', async (mode) => {
    const system = rootSystem().addFile(PATH, '4321', { mode });
    const error = await refusal(system, PATH);
    expect(error.message).toContain('writable by group or others');
    expect(error.message).toContain(`chmod go-w ${PATH}`);
  });

  test("refuses Debian's /run/php, owned by www-data", async () => {
    const system = rootSystem().addDirectory('/run/php', { uid: 33 }).addFile('/run/php/php8.2-fpm.pid', '4321');
    const error = await refusal(system, '/run/php/php8.2-fpm.pid');
    expect(error.path).toBe('/run/php');
    expect(error.message).toContain('is owned by uid 33, not root');
    expect(error.message).toContain('/run/php-fpm-multi');
  });

  test('refuses a directory on the way writable by group or others without the sticky bit', async () => {
    const system = rootSystem().addDirectories('/srv/fpm').addDirectory('/srv', { mode: 0o777 }).addFile('/srv/fpm/a.pid', '4321');
    const error = await refusal(system, '/srv/fpm/a.pid');
    expect(error.path).toBe('/srv');
    expect(error.message).toContain('without the sticky bit (mode 0777)');
    const groupWritable = rootSystem().addDirectory('/run/php-fpm-multi', { mode: 0o775 }).addFile(PATH, '4321');
    expect((await refusal(groupWritable, PATH)).path).toBe('/run/php-fpm-multi');
  });

  test('refuses a directory on the way owned by another user', async () => {
    const system = rootSystem().addDirectories('/home/alice/fpm').addDirectory('/home/alice', { uid: 1000, mode: 0o700 });
    expect((await refusal(system.addFile('/home/alice/fpm/a.pid', '4321'), '/home/alice/fpm/a.pid')).path).toBe('/home/alice');
    // what exists of the path is checked even when the pidfile's directory is missing
    expect((await refusal(system, '/home/alice/missing/a.pid')).path).toBe('/home/alice');
  });

  test('in a sticky shared directory: trusted only when the pidfile exists, is root-owned and not writable by others', async () => {
    expect(await readTrustedPidfile(rootSystem().addFile('/tmp/a.pid', '4321'), '/tmp/a.pid')).toBe(4321);
    const missing = await refusal(rootSystem(), '/tmp/a.pid');
    expect(missing.path).toBe('/tmp');
    expect(missing.message).toContain('any local user could create it first');
    expect((await refusal(rootSystem().addFile('/tmp/a.pid', '4321', { uid: 1000 }), '/tmp/a.pid')).message).toContain('uid 1000');
    expect((await refusal(rootSystem().addFile('/tmp/a.pid', '4321', { mode: 0o646 }), '/tmp/a.pid')).message).toContain('writable');
  });

  test('below a sticky directory, a root-owned 0755 directory is safe', async () => {
    const system = rootSystem().addDirectory('/tmp/fpm').addFile('/tmp/fpm/a.pid', '4321');
    expect(await readTrustedPidfile(system, '/tmp/fpm/a.pid')).toBe(4321);
    expect(await checkPidfileTrust(system, '/tmp/fpm/b.pid')).toEqual({ exists: false });
  });

  test('a symlink owned by another user in a sticky directory is refused', async () => {
    const system = rootSystem().addDirectories('/srv/sub').addFile('/srv/sub/a.pid', '4321').addSymlink('/tmp/evil', '/srv', { uid: 1000 });
    const error = await refusal(system, '/tmp/evil/sub/a.pid');
    expect(error.path).toBe('/tmp/evil');
  });

  test('a symlink loop is refused', async () => {
    const system = rootSystem().addSymlink('/run/a', '/run/b').addSymlink('/run/b', '/run/a');
    expect((await refusal(system, '/run/a/x/y.pid')).message).toContain('symlink loop');
  });

  test('a relative path is refused', async () => {
    expect((await refusal(rootSystem(), 'run/web.pid')).message).toContain('relative path');
  });

  test('a non-root controller also trusts its own files, and nobody else', async () => {
    const system = rootSystem().addDirectory('/run/user', { mode: 0o755 }).addDirectory('/run/user/1000', { uid: 1000, mode: 0o700 });
    system.uid = 1000;
    system.addFile('/run/user/1000/a.pid', '4321', { uid: 1000 }).addFile('/run/user/1000/b.pid', '4321', { uid: 1001 });
    expect(await readTrustedPidfile(system, '/run/user/1000/a.pid')).toBe(4321);
    const error = await refusal(system, '/run/user/1000/b.pid');
    expect(error.message).toContain('not root or uid 1000');
  });
});

describe('run directory with a fake system', () => {
  test('ensureRunDirectory creates missing directories root-owned with mode 0755', async () => {
    const system = new FakeSystem().addDirectory('/run');
    expect(await checkRunDirectory(system, '/run/php-fpm-multi/php-fpm')).toBe(false);
    await ensureRunDirectory(system, '/run/php-fpm-multi/php-fpm');
    for (const dir of ['/run/php-fpm-multi', '/run/php-fpm-multi/php-fpm']) {
      expect(await system.lstat(dir)).toMatchObject({ kind: 'directory', mode: 0o755, uid: 0 });
    }
    expect(await checkRunDirectory(system, '/run/php-fpm-multi/php-fpm')).toBe(true);
    await ensureRunDirectory(system, '/run/php-fpm-multi/php-fpm'); // idempotent
  });

  test.each([
    ['sticky world-writable', (s: FakeSystem) => s.addDirectory('/run/fpm', { mode: 0o1777 }), 'writable by group or others'],
    ['group-writable', (s: FakeSystem) => s.addDirectory('/run/fpm', { mode: 0o775 }), 'writable by group or others'],
    ['owned by www-data', (s: FakeSystem) => s.addDirectory('/run/fpm', { uid: 33 }), 'owned by uid 33'],
    ['a symlink', (s: FakeSystem) => s.addDirectory('/srv').addSymlink('/run/fpm', '/srv'), 'is a symlink'],
    ['a file', (s: FakeSystem) => s.addFile('/run/fpm', ''), 'is not a directory'],
  ])('refuses a run directory that is %s', async (_name, setup, message) => {
    const system = setup(new FakeSystem().addDirectory('/run'));
    for (const check of [checkRunDirectory(system, '/run/fpm'), ensureRunDirectory(system, '/run/fpm')]) {
      const error = await rejection(check);
      expect(error).toBeInstanceOf(UntrustedPathError);
      expect((error as Error).message).toContain('run directory /run/fpm: ');
      expect((error as Error).message).toContain(message);
    }
  });
});

describe('with the real system', () => {
  const system = createRealSystem();
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pidfile-test-')); // 0700, ours, below sticky /tmp
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('reads a pidfile as php-fpm writes it (no newline), refuses symlinks and loose modes', async () => {
    const pidfile = join(dir, 'a.pid');
    writeFileSync(pidfile, '9770', { mode: 0o644 });
    expect(await readTrustedPidfile(system, pidfile)).toBe(9770);
    chmodSync(pidfile, 0o666);
    expect(await rejection(readTrustedPidfile(system, pidfile))).toBeInstanceOf(UntrustedPathError);
    chmodSync(pidfile, 0o644);
    symlinkSync(pidfile, join(dir, 'link.pid'));
    expect(((await rejection(readTrustedPidfile(system, join(dir, 'link.pid')))) as Error).message).toContain('is a symlink');
    expect(await readTrustedPidfile(system, join(dir, 'missing.pid'))).toBeNull();
  });

  test('ensureRunDirectory creates nested directories with mode exactly 0755 and refuses loose ones', async () => {
    const run = join(dir, 'run', 'php-fpm-multi');
    await ensureRunDirectory(system, run);
    expect(statSync(run).mode & 0o7777).toBe(0o755);
    expect(statSync(join(dir, 'run')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(run).uid).toBe(process.getuid?.());
    const loose = join(dir, 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o777);
    expect(await rejection(ensureRunDirectory(system, loose))).toBeInstanceOf(UntrustedPathError);
  });
});
