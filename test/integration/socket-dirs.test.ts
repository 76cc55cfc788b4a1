// Issue 14, item 2: /run is a tmpfs, so a socket directory made by hand is gone after a reboot and
// php-fpm's bind fails. start (restart, reload) creates a missing one where that is safe; check
// reports the ones it will not create, and creates nothing. Real php-fpm, real cgi-fcgi.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { CGI_FCGI, declareInstances, listFpmProcesses, makeFpmScratch, PHP_FPM, requestPhp, requirePrograms, type FpmScratch } from '../helpers/fpm.js';

/** Debian's www-data. */
const WWW_DATA_ID = 33;

let scratch: FpmScratch;
/** A directory of this test's own in /run (a tmpfs, root-only: where socket directories belong). */
let runTop: string;

beforeAll(() => requirePrograms(PHP_FPM, CGI_FCGI));
beforeEach(() => {
  scratch = makeFpmScratch();
  runTop = `/run/php-fpm-multi-sockdirs-${randomBytes(4).toString('hex')}`;
});
afterEach(async () => {
  await cli('stop');
  scratch.remove();
  rmSync(runTop, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(['--conf', scratch.decl, ...args]);

function listenAt(name: string, socket: string, extra = ''): void {
  const config = join(scratch.dir, name, 'php-fpm.conf');
  writeFileSync(config, readFileSync(config, 'utf8').replace(`listen = ${scratch.socket(name)}`, `listen = ${socket}`) + extra);
}

/** A real FastCGI request for index.php at `socket`; the body, or the failure. */
function requestAt(socket: string): string {
  const result = spawnSync(CGI_FCGI, ['-bind', '-connect', socket], {
    env: { SCRIPT_FILENAME: join(scratch.dir, 'index.php'), REQUEST_METHOD: 'GET', SCRIPT_NAME: '/index.php' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  const body = result.stdout.split(/\r?\n\r?\n/).slice(1).join('\n\n').trim();
  return result.status === 0 ? body : `cgi-fcgi failed (${result.status}): ${result.stderr}`;
}

function ownerAndMode(path: string): string {
  const stat = lstatSync(path);
  return `${stat.isDirectory() ? 'dir' : 'not-dir'} ${stat.uid}:${stat.gid} ${(stat.mode & 0o7777).toString(8)}`;
}

describe('a missing socket directory is created at start', () => {
  test('every missing component under /run, root:root 0755; php-fpm serves; check before created nothing', async () => {
    declareInstances(scratch, ['a']);
    const socket = `${runTop}/a/b.sock`;
    listenAt('a', socket);
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain(`${runTop}/a (the directory of pool 'a''s listen ${socket} (${join(scratch.dir, 'a', 'php-fpm.conf')}:7)) does not exist; start will create it (with ${runTop}), 0755`);
    expect(existsSync(runTop)).toBe(false);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain(`a: started (pid `);
    expect(started.stdout).toContain(`\n  created ${runTop} (root:root 0755) for pool 'a' of instance 'a'\n  created ${runTop}/a (root:root 0755) for pool 'a' of instance 'a'`);
    expect([ownerAndMode(runTop), ownerAndMode(`${runTop}/a`)]).toEqual(['dir 0:0 755', 'dir 0:0 755']);
    expect(requestAt(socket)).toBe('hello from a');
  });

  test('socket_dir_owner= and socket_dir_mode= (in FPM_defaults) give the socket directory to www-data, 0750; its parent stays root 0755', async () => {
    declareInstances(scratch, ['a']);
    scratch.declare(`FPM_defaults="socket_dir_owner=www-data:www-data socket_dir_mode=0750"\nFPM_slot_a="slot=8.2 config=${join(scratch.dir, 'a', 'php-fpm.conf')}"`);
    const socket = `${runTop}/a/b.sock`;
    listenAt('a', socket);
    const checked = await cli('check');
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toContain(`start will create it (with ${runTop}), www-data:www-data 0750`);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain(`created ${runTop}/a (www-data:www-data 0750) for pool 'a' of instance 'a'`);
    expect([ownerAndMode(runTop), ownerAndMode(`${runTop}/a`)]).toEqual(['dir 0:0 755', `dir ${WWW_DATA_ID}:${WWW_DATA_ID} 750`]);
    expect(requestAt(socket)).toBe('hello from a');
    // After a "reboot" (the tmpfs emptied, php-fpm gone), the next start makes it again.
    expect((await cli('stop')).code).toBe(0);
    rmSync(runTop, { recursive: true });
    const again = await cli('start');
    expect(again.code, again.stderr).toBe(0);
    expect(ownerAndMode(`${runTop}/a`)).toBe(`dir ${WWW_DATA_ID}:${WWW_DATA_ID} 750`);
    expect(requestAt(socket)).toBe('hello from a');
  });

  test('a listen path with ".." through a symlink: check refuses it, start launches nothing for it, the other instance starts', async () => {
    declareInstances(scratch, ['a', 'b']);
    // The kernel resolves link/.. to the symlink target's parent, not to runTop: php-fpm would bind elsewhere than checked.
    mkdirSync(join(runTop, 'elsewhere', 'deep'), { recursive: true });
    symlinkSync(join(runTop, 'elsewhere', 'deep'), join(runTop, 'link'));
    const socket = `${runTop}/link/../x7/a.sock`;
    listenAt('a', socket);
    const problem = `pool 'a''s listen ${socket} (${join(scratch.dir, 'a', 'php-fpm.conf')}:7) has a "." or ".." component, which the kernel resolves after following the symlinks before it`;
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(problem);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(problem);
    expect(existsSync(join(runTop, 'x7'))).toBe(false);
    expect(existsSync(join(runTop, 'elsewhere', 'x7'))).toBe(false);
    expect(listFpmProcesses(scratch.dir).map((proc) => proc.title.replace(scratch.dir, 'DIR'))).not.toContain('php-fpm: master process (DIR/a/php-fpm.conf)');
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
  });

  test('an existing directory is used as it is: never chowned or chmodded', async () => {
    declareInstances(scratch, ['a'], 'socket_dir_owner=www-data socket_dir_mode=0750');
    mkdirSync(`${runTop}/a`, { recursive: true, mode: 0o711 });
    chmodSync(`${runTop}/a`, 0o711);
    listenAt('a', `${runTop}/a/b.sock`);
    const started = await cli('start');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).not.toContain('created');
    expect(ownerAndMode(`${runTop}/a`)).toBe('dir 0:0 711');
    expect(requestAt(`${runTop}/a/b.sock`)).toBe('hello from a');
  });

  test('an unknown socket_dir_owner: check and start name it, with the getent that proves it', async () => {
    declareInstances(scratch, ['a'], 'socket_dir_owner=www-data:no-such-group-sockdirs');
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    const message = "socket_dir_owner=www-data:no-such-group-sockdirs names group 'no-such-group-sockdirs', which this system does not know (getent group no-such-group-sockdirs finds nothing)";
    expect(checked.stderr).toContain(message);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(message);
  });

  test('reload: a pool added in a missing directory gets it before the signal, and serves', async () => {
    declareInstances(scratch, ['a']);
    expect((await cli('start')).code).toBe(0);
    const config = join(scratch.dir, 'a', 'php-fpm.conf');
    writeFileSync(config, `${readFileSync(config, 'utf8')}\n[second]\nuser = www-data\ngroup = www-data\nlisten = ${runTop}/second/s.sock\npm = static\npm.max_children = 1\nenv[INSTANCE] = second\n`);
    const reloaded = await cli('reload');
    expect(reloaded.code, reloaded.stderr).toBe(0);
    expect(reloaded.stdout).toContain(`created ${runTop}/second (root:root 0755) for pool 'second' of instance 'a'`);
    expect(requestAt(`${runTop}/second/s.sock`)).toBe('hello from second');
    expect(requestPhp(scratch, 'a')).toBe('hello from a');
  });
});

describe('a missing socket directory php-fpm-multi will not create', () => {
  test('under a world-writable parent: check reports it, start refuses it before launching, other instances start', async () => {
    declareInstances(scratch, ['a', 'b']);
    const open = join(scratch.dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o1777);
    listenAt('a', `${open}/x/a.sock`);
    const message = `${open}/x (the directory of pool 'a''s listen ${open}/x/a.sock (${join(scratch.dir, 'a', 'php-fpm.conf')}:7)) does not exist, and php-fpm-multi will not create it: ` +
      `${open} is writable by group or others (mode 01777): whoever can write it could plant or swap ${open}/x, so it is not created there. ` +
      `Fix: choose a listen path under a directory only root may write (e.g. /run/php/<pool>.sock), or create ${open}/x yourself`;
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(message);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`a: not started: ${message}`);
    expect(started.stdout).toContain('b: started');
    expect(requestPhp(scratch, 'b')).toBe('hello from b');
    expect(existsSync(`${open}/x`)).toBe(false);
    expect(listFpmProcesses(scratch.dir).filter((p) => p.title.includes(join(scratch.dir, 'a')))).toEqual([]);
    // The fix, followed: created by hand, it is used as it is.
    mkdirSync(`${open}/x`);
    const retried = await cli('start');
    expect(retried.code, retried.stderr).toBe(0);
    expect(requestAt(`${open}/x/a.sock`)).toBe('hello from a');
  });

  test('a symlink planted by another user on the path: refused, nothing is created where it points', async () => {
    declareInstances(scratch, ['a']);
    mkdirSync(runTop, { mode: 0o755 });
    const link = join(scratch.dir, 'link');
    symlinkSync(runTop, link);
    lchownSync(link, WWW_DATA_ID, WWW_DATA_ID);
    listenAt('a', `${link}/x/a.sock`);
    const checked = await cli('check');
    expect(checked.code).toBe(6);
    expect(checked.stderr).toContain(`${link} is a symlink owned by uid ${WWW_DATA_ID}, not root: its owner could point it elsewhere, so ${link}/x is not created through it. Fix: write the listen path without the symlink (its real directory is ${runTop})`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`a: not started: ${link}/x (the directory of pool 'a''s listen ${link}/x/a.sock`);
    expect(existsSync(`${runTop}/x`)).toBe(false);
    expect(listFpmProcesses(scratch.dir)).toEqual([]);
  });

  test('a parent another user owns (www-data could swap what is created in it): refused', async () => {
    declareInstances(scratch, ['a']);
    const theirs = join(scratch.dir, 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    lchownSync(theirs, WWW_DATA_ID, WWW_DATA_ID);
    listenAt('a', `${theirs}/x/a.sock`);
    const started = await cli('start');
    expect(started.code).toBe(1);
    expect(started.stderr).toContain(`${theirs} is owned by uid ${WWW_DATA_ID}, not root: its owner could replace what is created below it`);
    expect(existsSync(`${theirs}/x`)).toBe(false);
  });
});
