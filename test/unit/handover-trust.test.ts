// Whether a restart may hand sockets over in a listen path's directory: only where nobody but
// root (the controller) may write, for the controller binds a new socket there and then chowns
// and chmods it by path (tryout: a symlink renamed over the temporary name in a www-data-owned
// /run/php gave a root-only 0600 file the socket's owner and mode 0660).
import { describe, expect, test } from 'vitest';
import { findOtherWriter, type SeenEntry } from '../../src/model/socket-dir.js';
import { describeUnsafeHandover, withoutHandover } from '../../src/process/handover.js';
import { FakeSystem } from '../fixtures/fake-system.js';

const ROOT_DIR: SeenEntry = { kind: 'directory', uid: 0, mode: 0o755 };

function chainOf(entries: Record<string, SeenEntry>): Array<{ path: string; stat: SeenEntry }> {
  return Object.entries(entries).map(([path, stat]) => ({ path, stat }));
}

describe('who else may write a directory (pure)', () => {
  test('a root-only chain: nobody', () => {
    expect(findOtherWriter(chainOf({ '/': ROOT_DIR, '/run': ROOT_DIR, '/run/php': ROOT_DIR }), [], [0], '/run/php')).toBeNull();
  });

  test('the directory owned by another user (Debian www-data /run/php)', () => {
    const chain = chainOf({ '/': ROOT_DIR, '/run': ROOT_DIR, '/run/php': { kind: 'directory', uid: 33, mode: 0o755 } });
    expect(findOtherWriter(chain, [], [0], '/run/php')).toEqual({ kind: 'owner', at: '/run/php', uid: 33 });
  });

  test('an ancestor owned by another user, or group-writable without the sticky bit', () => {
    const owned = chainOf({ '/': ROOT_DIR, '/home': ROOT_DIR, '/home/alice': { kind: 'directory', uid: 1000, mode: 0o755 }, '/home/alice/run': ROOT_DIR });
    expect(findOtherWriter(owned, [], [0], '/home/alice/run')).toEqual({ kind: 'owner', at: '/home/alice', uid: 1000 });
    const writable = chainOf({ '/': ROOT_DIR, '/srv': { kind: 'directory', uid: 0, mode: 0o775 }, '/srv/sock': ROOT_DIR });
    expect(findOtherWriter(writable, [], [0], '/srv/sock')).toEqual({ kind: 'writable', at: '/srv', mode: 0o775 });
  });

  test('a sticky world-writable ancestor (/tmp) is fine above a root-only directory, not as the directory itself', () => {
    const tmp: SeenEntry = { kind: 'directory', uid: 0, mode: 0o1777 };
    expect(findOtherWriter(chainOf({ '/': ROOT_DIR, '/tmp': tmp, '/tmp/sock': ROOT_DIR }), [], [0], '/tmp/sock')).toBeNull();
    expect(findOtherWriter(chainOf({ '/': ROOT_DIR, '/tmp': tmp }), [], [0], '/tmp')).toEqual({ kind: 'writable', at: '/tmp', mode: 0o1777 });
  });

  test('a symlink on the way owned by another user; the controller\'s own uid is trusted when it is not root', () => {
    const chain = chainOf({ '/': ROOT_DIR, '/run': ROOT_DIR });
    expect(findOtherWriter(chain, [{ path: '/var/run', uid: 33 }], [0], '/run')).toEqual({ kind: 'symlink', at: '/var/run', uid: 33 });
    const own = chainOf({ '/': ROOT_DIR, '/home': ROOT_DIR, '/home/bob': { kind: 'directory', uid: 1001, mode: 0o700 } });
    expect(findOtherWriter(own, [], [0, 1001], '/home/bob')).toBeNull();
  });
});

describe('hand-over eligibility (fake system)', () => {
  test('a socket directory only root may write: handed over', async () => {
    const system = new FakeSystem().addDirectories('/run/php-fpm-multi/sockets');
    expect(await describeUnsafeHandover(system, ['/run/php-fpm-multi/sockets/a.sock', '/run/php-fpm-multi/sockets/a-status.sock'])).toBeNull();
  });

  test('a socket directory www-data owns: not handed over, saying who may write it', async () => {
    const system = new FakeSystem().addDirectories('/run/safe').addDirectories('/run/php', { uid: 33, mode: 0o755 });
    expect(await describeUnsafeHandover(system, ['/run/safe/a.sock', '/run/php/a.sock'])).toBe(
      '/run/php is owned by uid 33, not root: another user may write there, and could swap a symlink in for the new socket before it is chowned',
    );
  });

  test('a user-writable ancestor, or a socket directory reached through a user\'s symlink: not handed over', async () => {
    const system = new FakeSystem().addDirectories('/srv/www', { uid: 0, mode: 0o775 }).addDirectory('/srv/www/sock');
    expect(await describeUnsafeHandover(system, ['/srv/www/sock/a.sock'])).toMatch(/^\/srv\/www is writable by group or others \(mode 0775\): another user may write there/);
    const linked = new FakeSystem().addDirectories('/run/real').addSymlink('/run/link', '/run/real', { uid: 1000 });
    expect(await describeUnsafeHandover(linked, ['/run/link/a.sock'])).toMatch(/^\/run\/link is a symlink owned by uid 1000, not root/);
  });

  test('the stop and start that replaced it says why', () => {
    const outcome = { name: 'a', ok: true, message: 'started (pid 7)' };
    expect(withoutHandover(outcome, { kind: 'not-handed', why: '/run/php is owned by uid 33' }).message).toBe(
      'started (pid 7) (not handed over: /run/php is owned by uid 33; restarted by stop and start)',
    );
    expect(withoutHandover(outcome, { kind: 'not-handed', why: null })).toBe(outcome);
  });
});
