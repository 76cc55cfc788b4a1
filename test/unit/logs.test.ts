// `logs`: the tail of a log read backwards in bounded pieces, name prefixes, instances sharing a
// file, where a config says php-fpm logs, and following across rotation, truncation and a file
// that appears late, all on the fake System (no real files, no sleeping).
import { describe, expect, test } from 'vitest';
import { FakeSystem } from '../fixtures/fake-system.js';
import { escapeLogLine, formatLogLine, groupLogFiles, showLogs } from '../../src/commands/logs.js';
import { openLog } from '../../src/process/log-access.js';
import { pollLog, readLastLines, RETIRED_QUIET_POLLS, splitLines, startFollowing } from '../../src/process/log-tail.js';
import { LOG_READ_CHUNK_BYTES, UnsafeFileError } from '../../src/process/system.js';
import { parseFpmConfig } from '../../src/php-fpm/config/parse.js';
import { describeSyslog, locateLog } from '../../src/php-fpm/log.js';
import { main } from '../../src/cli/main.js';

const numbered = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join('');

/** A reader that counts what it was asked to read, to prove the tail never reads the whole file. */
async function countingOpen(system: FakeSystem, path: string): Promise<{ file: Awaited<ReturnType<FakeSystem['openReadable']>>; bytesRead: () => number }> {
  const file = await system.openReadable(path);
  let total = 0;
  return {
    file: {
      ...file,
      read: async (position, maxBytes) => {
        const piece = await file.read(position, maxBytes);
        total += piece.length;
        return piece;
      },
    },
    bytesRead: () => total,
  };
}

describe('the tail of a log', () => {
  test('the last 10 lines of 15, the last 3, and none for -n 0', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', numbered(1, 15));
    const file = await system.openReadable('/var/log/a.log');
    expect((await readLastLines(file, 10)).lines).toEqual(numbered(6, 15).trimEnd().split('\n'));
    expect((await readLastLines(file, 3)).lines).toEqual(['line 13', 'line 14', 'line 15']);
    const none = await readLastLines(file, 0);
    expect(none.lines).toEqual([]);
    expect(none.end).toBe(numbered(1, 15).length);
  });

  test('a short file gives all its lines; a line still being written is kept apart', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'one\ntwo\nthr');
    const tail = await readLastLines(await system.openReadable('/var/log/a.log'), 10);
    expect(tail.lines).toEqual(['one', 'two']);
    expect(tail.partial.toString()).toBe('thr');
    expect(tail.capped).toBe(false);
  });

  test('a large log is read from its end only, in pieces, not whole', async () => {
    const content = numbered(1, 200_000); // about 2.3 MB
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/big.log', content);
    const { file, bytesRead } = await countingOpen(system, '/var/log/big.log');
    const tail = await readLastLines(file, 5);
    expect(tail.lines).toEqual(['line 199996', 'line 199997', 'line 199998', 'line 199999', 'line 200000']);
    expect(bytesRead()).toBe(LOG_READ_CHUNK_BYTES);
  });

  test('more lines than fit in the byte limit: what fits, and it says so', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', numbered(1, 1000));
    const { file, bytesRead } = await countingOpen(system, '/var/log/a.log');
    const tail = await readLastLines(file, 1000, 100);
    expect(bytesRead()).toBe(100);
    expect(tail.capped).toBe(true);
    expect(tail.lines.length).toBeLessThan(1000);
    expect(tail.lines.at(-1)).toBe('line 1000');
    // The first bytes read began mid-line: no cut line is shown.
    for (const line of tail.lines) expect(line).toMatch(/^line \d+$/);
  });

  test('lines are split at line feeds only', () => {
    const { lines, partial } = splitLines(Buffer.from('a\r\nb\n\nc'));
    expect(lines).toEqual(['a\r', 'b', '']);
    expect(partial.toString()).toBe('c');
  });
});

describe('names and shared files', () => {
  test('lines carry the instance name only when several are shown', () => {
    expect(formatLogLine('web', '[07-Dec] NOTICE: ready', true)).toBe('web: [07-Dec] NOTICE: ready\n');
    expect(formatLogLine('web', '[07-Dec] NOTICE: ready', false)).toBe('[07-Dec] NOTICE: ready\n');
  });

  test('instances sharing a file are read once, labelled with every name, and warned about', () => {
    const { sources, shared } = groupLogFiles([
      { name: 'a', location: { kind: 'file', path: '/var/log/php-fpm.log', configured: false } },
      { name: 'b', location: { kind: 'file', path: '/var/log/b.log', configured: true } },
      { name: 'c', location: { kind: 'file', path: '/var/log/php-fpm.log', configured: false } },
      { name: 'd', location: { kind: 'syslog', ident: 'd', facility: 'daemon' } },
    ]);
    expect(sources).toEqual([{ label: 'a,c', path: '/var/log/php-fpm.log', userUids: [] }, { label: 'b', path: '/var/log/b.log', userUids: [] }]);
    expect(shared).toEqual([expect.stringContaining('instances a, c all log to /var/log/php-fpm.log')]);
  });

  test('showLogs prints every source prefixed, and names a missing file as a failure', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'a1\na2\n').addFile('/var/log/b.log', 'b1\n');
    let stdout = '';
    let stderr = '';
    const io = { stdout: (text: string) => void (stdout += text), stderr: (text: string) => void (stderr += text) };
    const sources = [{ label: 'a', path: '/var/log/a.log', userUids: [] }, { label: 'b', path: '/var/log/b.log', userUids: [] }, { label: 'c', path: '/var/log/c.log', userUids: [] }];
    const failures = await showLogs(system, io, sources, true, { lines: 10, follow: false, shouldStop: () => true });
    expect(stdout).toBe('a: a1\na: a2\nb: b1\n');
    expect(failures).toBe(1);
    expect(stderr).toContain('c: error_log /var/log/c.log does not exist (yet): php-fpm creates it when the instance starts');
    expect(system.openHandles).toBe(0);
  });

  test('a directory at the log path is refused, not read', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addDirectory('/var/log/dir.log');
    let stderr = '';
    const failures = await showLogs(system, { stdout: () => undefined, stderr: (t) => void (stderr += t) }, [{ label: 'a', path: '/var/log/dir.log', userUids: [] }], false, {
      lines: 10, follow: false, shouldStop: () => true,
    });
    expect(failures).toBe(1);
    expect(stderr).toContain('not a regular file');
  });
});

describe('following', () => {
  function collect(): { lines: string[]; notes: string[]; emit: (name: string, line: string) => void; say: (name: string, message: string) => void } {
    const lines: string[] = [];
    const notes: string[] = [];
    return { lines, notes, emit: (name, line) => void lines.push(`${name}: ${line}`), say: (name, message) => void notes.push(`${name}: ${message}`) };
  }

  test('across a rotation: the old file is read to its end (lines written before the reopen), then the new one', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'old 1\n');
    const file = await system.openReadable('/var/log/a.log');
    const log = await startFollowing('a', '/var/log/a.log', file, await readLastLines(file, 10));
    const out = collect();
    system.appendFile('/var/log/a.log', 'old 2\n');
    await pollLog(system, log, out.emit, out.say);
    expect(out.lines).toEqual(['a: old 2']);

    // logrotate: rename, create; php-fpm writes once more to the old file, then reopens.
    await system.rename('/var/log/a.log', '/var/log/a.log.1');
    await pollLog(system, log, out.emit, out.say);
    expect(out.notes).toEqual(['a: /var/log/a.log does not exist (yet); waiting for it']);
    system.addFile('/var/log/a.log', '');
    system.appendFile('/var/log/a.log.1', 'old 3, before the reopen\n');
    await pollLog(system, log, out.emit, out.say);
    system.appendFile('/var/log/a.log.1', 'old 4, still before it\n');
    system.appendFile('/var/log/a.log', 'new 1\n');
    await pollLog(system, log, out.emit, out.say);
    expect(out.lines).toEqual(['a: old 2', 'a: old 3, before the reopen', 'a: old 4, still before it', 'a: new 1']);
    expect(out.notes).toContain('a: /var/log/a.log has been replaced; following the new file');
    // The old file is closed once it stays quiet.
    expect(system.openHandles).toBe(2);
    for (let i = 0; i < RETIRED_QUIET_POLLS; i += 1) await pollLog(system, log, out.emit, out.say);
    expect(system.openHandles).toBe(1);
  });

  test('a truncated file is read again from its start', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'one\ntwo\n');
    const file = await system.openReadable('/var/log/a.log');
    const log = await startFollowing('a', '/var/log/a.log', file, await readLastLines(file, 10));
    const out = collect();
    system.truncateFile('/var/log/a.log').appendFile('/var/log/a.log', 'x\n');
    await pollLog(system, log, out.emit, out.say);
    expect(out.lines).toEqual(['a: x']);
    expect(out.notes).toEqual(['a: /var/log/a.log: file truncated; reading it from its start']);
  });

  test('a log that does not exist yet is followed once it appears; a line is shown once complete', async () => {
    const system = new FakeSystem().addDirectories('/var/log');
    const log = await startFollowing('a', '/var/log/a.log', null, null);
    const out = collect();
    await pollLog(system, log, out.emit, out.say);
    await pollLog(system, log, out.emit, out.say);
    expect(out.notes).toEqual(['a: /var/log/a.log does not exist (yet); waiting for it']);
    system.addFile('/var/log/a.log', 'first\nhal');
    await pollLog(system, log, out.emit, out.say);
    system.appendFile('/var/log/a.log', 'f\n');
    await pollLog(system, log, out.emit, out.say);
    expect(out.lines).toEqual(['a: first', 'a: half']);
    expect(out.notes).toContain('a: /var/log/a.log appeared; following it');
  });

  test('showLogs follows several logs at once, prefixed, until told to stop, and closes them', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'a0\n').addFile('/var/log/b.log', 'b0\n');
    let stdout = '';
    let rounds = 0;
    const io = { stdout: (text: string) => void (stdout += text), stderr: () => undefined };
    const shouldStop = (): boolean => {
      rounds += 1;
      if (rounds === 2) system.appendFile('/var/log/b.log', 'b1\n').appendFile('/var/log/a.log', 'a1\n');
      return rounds > 3;
    };
    const sources = [{ label: 'a', path: '/var/log/a.log', userUids: [] }, { label: 'b', path: '/var/log/b.log', userUids: [] }];
    expect(await showLogs(system, io, sources, true, { lines: 1, follow: true, shouldStop })).toBe(0);
    expect(stdout).toBe('a: a0\nb: b0\na: a1\nb: b1\n');
    expect(system.openHandles).toBe(0);
  });
});

describe('where a config says php-fpm logs', () => {
  const read = (text: string, prefix?: string) => parseFpmConfig('/etc/fpm.conf', {
    reader: { readFile: () => text, glob: () => [] }, ...(prefix === undefined ? {} : { prefix }),
  });

  test('error_log set, unset (the default under /var, shared), and relative to -p', () => {
    expect(locateLog(read('[global]\nerror_log = /var/log/php-fpm-multi/a.log\n'))).toEqual({ kind: 'file', path: '/var/log/php-fpm-multi/a.log', configured: true });
    expect(locateLog(read('[global]\n'))).toEqual({ kind: 'file', path: '/var/log/php-fpm.log', configured: false });
    expect(locateLog(read('[global]\nerror_log = log/a.log\n', '/srv/a'))).toEqual({ kind: 'file', path: '/srv/a/log/a.log', configured: true });
  });

  test('syslog, with its ident and facility (defaults php-fpm, daemon), and where to look', () => {
    expect(locateLog(read('[global]\nerror_log = syslog\n'))).toEqual({ kind: 'syslog', ident: 'php-fpm', facility: 'daemon' });
    expect(locateLog(read('[global]\nerror_log = syslog\nsyslog.ident = fpm-web\nsyslog.facility = LOCAL3\n'))).toEqual({ kind: 'syslog', ident: 'fpm-web', facility: 'local3' });
    expect(describeSyslog('fpm-web', 'local3')).toContain('journalctl -t fpm-web');
  });
});

describe('the command line', () => {
  const run = async (...argv: string[]) => {
    let stderr = '';
    const code = await main(argv, { stdout: () => undefined, stderr: (text) => void (stderr += text), env: {}, system: new FakeSystem() });
    return { code, stderr };
  };

  test('-n takes a count of lines; anything else is a usage error', async () => {
    const result = await run('--conf', '/nonexistent', 'logs', '-n', 'ten');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('-n/--lines needs a number of lines (0 or more), not "ten"');
  });

  test('-n and -f belong to logs only', async () => {
    expect((await run('status', '-f')).stderr).toContain('--follow goes with logs, not status');
    expect((await run('list', '-n', '3')).stderr).toContain('--lines goes with logs, not list');
  });

  test('logs without a usable declaration file says why it needs one (exit 6)', async () => {
    const result = await run('--conf', '/etc/conf.d/none', 'logs');
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('logs finds each instance\'s error_log in the php-fpm config that the declaration names');
  });
});

describe('what logs opens (it prints what it reads, often as root)', () => {
  const root = { controllerUid: 0, userUids: [] };
  const www = { controllerUid: 0, userUids: [33] };
  const refusal = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise;
    } catch (error) {
      expect(error).toBeInstanceOf(UnsafeFileError);
      expect((error as UnsafeFileError).reason).toBe('untrusted');
      return (error as Error).message;
    }
    throw new Error('opened, not refused');
  };

  test('root\'s log in root\'s directory opens; so does a user= instance\'s own log in a directory of that user', async () => {
    const system = new FakeSystem().addDirectories('/var/log/php-fpm-multi').addFile('/var/log/php-fpm-multi/a.log', 'a\n')
      .addDirectory('/srv', { mode: 0o755 }).addDirectory('/srv/b', { uid: 33 }).addFile('/srv/b/error.log', 'b\n', { uid: 33 });
    await (await openLog(system, '/var/log/php-fpm-multi/a.log', root)).close();
    await (await openLog(system, '/srv/b/error.log', www)).close();
    // The user's log may also sit in root's directory (logrotate's create gives it back to the user).
    system.addFile('/var/log/php-fpm-multi/b.log', 'b\n', { uid: 33 });
    await (await openLog(system, '/var/log/php-fpm-multi/b.log', www)).close();
    expect(system.openHandles).toBe(0);
  });

  test('a symlink at the log path is refused, whoever owns it and whatever it names', async () => {
    const system = new FakeSystem().addDirectories('/etc').addDirectories('/srv').addFile('/etc/shadow', 'root:secret\n', { mode: 0o640 })
      .addDirectory('/srv/b', { uid: 33 }).addSymlink('/srv/b/error.log', '/etc/shadow', { uid: 33 });
    expect(await refusal(openLog(system, '/srv/b/error.log', www))).toBe('/srv/b/error.log is a symlink: logs never follows one (its owner could point it at any file)');
    system.addSymlink('/srv/root.log', '/etc/shadow');
    expect(await refusal(openLog(system, '/srv/root.log', root))).toContain('is a symlink');
    expect(system.openHandles).toBe(0);
  });

  test('a file owned by a uid other than root, the controller or the instance\'s user is refused', async () => {
    const system = new FakeSystem().addDirectories('/var/log').addFile('/var/log/a.log', 'x\n', { uid: 1000 });
    expect(await refusal(openLog(system, '/var/log/a.log', www))).toBe('/var/log/a.log is owned by uid 1000, not root or uid 33');
    expect(system.openHandles).toBe(0);
    // A controller that is not root reads what the kernel lets it (no disclosure), but never through a symlink.
    system.addDirectory('/srv', { mode: 0o777 }).addFile('/srv/a.log', 'x\n', { uid: 1001 }).addSymlink('/srv/b.log', '/srv/a.log', { uid: 1001 });
    await (await openLog(system, '/srv/a.log', { controllerUid: 1000, userUids: [] })).close();
    expect(await refusal(openLog(system, '/srv/b.log', { controllerUid: 1000, userUids: [] }))).toContain('is a symlink');
  });

  test('root\'s file in a directory a user owns (a hard link, a renamed directory) is refused; the user\'s own file there opens', async () => {
    const system = new FakeSystem().addDirectories('/srv').addDirectory('/srv/b', { uid: 33 }).addFile('/srv/b/error.log', 'secret\n');
    expect(await refusal(openLog(system, '/srv/b/error.log', www))).toBe('/srv/b/error.log is reached through /srv/b, a directory owned by uid 33, not root: its owner could put any file there');
    // A third party's directory above the user's own log.
    const other = new FakeSystem().addDirectories('/srv').addDirectory('/srv/t', { uid: 1000 }).addDirectory('/srv/t/b', { uid: 33 }).addFile('/srv/t/b/error.log', 'b\n', { uid: 33 });
    expect(await refusal(openLog(other, '/srv/t/b/error.log', www))).toContain('/srv/t, a directory owned by uid 1000, not root or uid 33');
  });

  test('a directory writable by others without the sticky bit, or a user\'s symlink among the directories, is refused', async () => {
    const system = new FakeSystem().addDirectories('/srv').addDirectory('/srv/open', { mode: 0o777 }).addFile('/srv/open/a.log', 'x\n')
      .addDirectory('/srv/sticky', { mode: 0o1777 }).addFile('/srv/sticky/a.log', 'x\n')
      .addDirectory('/srv/real').addFile('/srv/real/a.log', 'x\n').addSymlink('/srv/link', '/srv/real', { uid: 33 }).addSymlink('/srv/rootlink', '/srv/real');
    expect(await refusal(openLog(system, '/srv/open/a.log', root))).toContain('lies below /srv/open, writable by group or others without the sticky bit (mode 0777)');
    await (await openLog(system, '/srv/sticky/a.log', root)).close();
    expect(await refusal(openLog(system, '/srv/link/a.log', www))).toContain('is reached through /srv/link, a symlink owned by uid 33, not root');
    await (await openLog(system, '/srv/rootlink/a.log', root)).close();
    expect(system.openHandles).toBe(0);
  });

  test('showLogs names the refusal and shows the other logs; following, a log swapped for a symlink is refused, its target never printed', async () => {
    const system = new FakeSystem().addDirectories('/etc').addDirectories('/srv').addDirectories('/var/log').addFile('/etc/shadow', 'root:secret\n', { mode: 0o600 })
      .addDirectory('/srv/b', { uid: 33 }).addSymlink('/srv/b/error.log', '/etc/shadow', { uid: 33 }).addFile('/var/log/a.log', 'a1\n');
    let stdout = '';
    let stderr = '';
    const io = { stdout: (text: string) => void (stdout += text), stderr: (text: string) => void (stderr += text) };
    const sources = [{ label: 'a', path: '/var/log/a.log', userUids: [] }, { label: 'b', path: '/srv/b/error.log', userUids: [33] }];
    expect(await showLogs(system, io, sources, true, { lines: 10, follow: false, shouldStop: () => true })).toBe(1);
    expect(stdout).toBe('a: a1\n');
    expect(stderr).toContain('b: error_log /srv/b/error.log is a symlink: logs never follows one');

    // -f: the user's own log, then replaced by a symlink to /etc/shadow mid-follow.
    await system.unlink('/srv/b/error.log');
    system.addFile('/srv/b/error.log', 'b1\n', { uid: 33 });
    stdout = '';
    stderr = '';
    let rounds = 0;
    const shouldStop = (): boolean => {
      rounds += 1;
      if (rounds === 2) {
        void system.rename('/srv/b/error.log', '/srv/b/error.log.1');
        system.addSymlink('/srv/b/error.log', '/etc/shadow', { uid: 33 });
      }
      return rounds > 4;
    };
    expect(await showLogs(system, io, [sources[1]!], false, { lines: 10, follow: true, shouldStop })).toBe(0);
    expect(stdout).toBe('b1\n');
    expect(stdout).not.toContain('secret');
    expect(stderr).toContain('/srv/b/error.log is a symlink: logs never follows one (its owner could point it at any file): not followed');
    expect(system.openHandles).toBe(0);
  });

  test('control characters but TAB are shown escaped as \\xNN: no escape sequence, title or NUL reaches the terminal', () => {
    expect(formatLogLine('a', 'x\x1b]0;owned\x07y\x00z\tw\x7f\u009b2J', true)).toBe('a: x\\x1b]0;owned\\x07y\\x00z\tw\\x7f\\x9b2J\n');
    expect(escapeLogLine('plain é \\ text')).toBe('plain é \\ text');
  });
});
