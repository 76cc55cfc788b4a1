// Who already listens on a pool's address (tryout finding 5): /proc/net/unix, tcp and tcp6 parsed,
// holders found through /proc/PID/fd, on a fake system.
import { describe, expect, test } from 'vitest';
import type { FpmPool } from '../../src/php-fpm/config/types.js';
import {
  createListenerProbe, decodeProcAddress, describeHeld, parseTcpListeners, parseUnixListeners,
} from '../../src/process/listeners.js';
import { masterTitle } from '../../src/process/proc.js';
import { describeHeldAddresses } from '../../src/process/occupants.js';
import { ProcessTable } from '../../src/process/terminate.js';
import { FakeSystem, titleCmdline } from '../fixtures/fake-system.js';

const UNIX_HEADER = 'Num       RefCount Protocol Flags    Type St Inode Path\n';
const TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

function unixLine(inode: number, path: string, listening = true): string {
  return `0000000059dd99c7: 00000002 00000000 ${listening ? '00010000' : '00000000'} 0001 ${listening ? '01' : '03'} ${inode} ${path}\n`;
}

function tcpLine(local: string, state: string, inode: number): string {
  return `   0: ${local} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;
}

function pool(name: string, listen: string): FpmPool {
  return { name, listen, listenAt: { file: '/etc/fpm/w.conf', line: 7 }, statusListen: null, statusListenAt: null } as unknown as FpmPool;
}

describe('parsing the kernel’s socket tables', () => {
  test('/proc/net/unix: only listening sockets with a path', () => {
    const content = UNIX_HEADER + unixLine(11, '/run/a.sock') + unixLine(12, '/run/b.sock', false) + unixLine(13, '@abstract') +
      '000000009fb43866: 00000003 00000000 00000000 0001 03  1131\n';
    expect(parseUnixListeners(content).map((s) => [s.endpoint.key, s.inode])).toEqual([['unix:/run/a.sock', 11]]);
  });

  test('/proc/net/tcp and tcp6 addresses', () => {
    expect(decodeProcAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeProcAddress('00000000')).toBe('0.0.0.0');
    expect(decodeProcAddress('00000000000000000000000000000000')).toBe('::');
    expect(decodeProcAddress('00000000000000000000000001000000')).toBe('::1');
    expect(decodeProcAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    const tcp = TCP_HEADER + tcpLine('0100007F:2328', '0A', 21) + tcpLine('0100007F:2329', '01', 22) + tcpLine('00000000:0050', '0A', 23);
    expect(parseTcpListeners(tcp).map((s) => [s.endpoint.key, s.inode])).toEqual([['tcp:127.0.0.1:9000', 21], ['tcp:0.0.0.0:80', 23]]);
    const tcp6 = TCP_HEADER + tcpLine('00000000000000000000000000000000:2328', '0A', 31);
    expect(parseTcpListeners(tcp6).map((s) => [s.endpoint.key, s.inode])).toEqual([['tcp:[::]:9000', 31]]);
  });
});

describe('the holders of a pool’s address', () => {
  /** a's master (pid 500) and its worker (501) hold /run/a.sock (inode 11); a node server (600) holds 127.0.0.1:9000. */
  function machine(): FakeSystem {
    const system = new FakeSystem().addDirectories('/proc/net');
    system.addFile('/proc/net/unix', UNIX_HEADER + unixLine(11, '/run/a.sock') + unixLine(12, '/run/other.sock'));
    system.addFile('/proc/net/tcp', TCP_HEADER + tcpLine('0100007F:2328', '0A', 21));
    system.addProcess({ pid: 500, sessionId: 500, cmdline: titleCmdline(masterTitle('/etc/fpm/a.conf')) });
    system.addProcess({ pid: 501, sessionId: 500, cmdline: titleCmdline('php-fpm: pool a') });
    system.addProcess({ pid: 600, sessionId: 1, cmdline: 'node\0server.js\0' });
    system.addProcess({ pid: 700, sessionId: 700, cmdline: 'sleep\0' + '100\0' });
    for (const [pid, fd, inode] of [[500, 3, 11], [501, 3, 11], [600, 20, 21], [700, 0, 99]] as const) {
      system.addDirectories(`/proc/${pid}/fd`).addSymlink(`/proc/${pid}/fd/${fd}`, `socket:[${inode}]`);
    }
    return system;
  }

  test('a unix socket held by another instance’s master is named, master first', async () => {
    const held = await createListenerProbe(machine()).findHeld([pool('w', '/run/a.sock')]);
    expect(held).toEqual([expect.objectContaining({ pool: 'w', listen: '/run/a.sock', holders: [expect.objectContaining({ pid: 500 }), expect.objectContaining({ pid: 501 })] })]);
    expect(describeHeld(held, null)).toEqual([
      "pool 'w' (/etc/fpm/w.conf:7): listen = /run/a.sock already has a listening socket, held by pid 500 (php-fpm: master process (/etc/fpm/a.conf)) and 1 more process, " +
        "which is not this instance's master, so php-fpm could not listen there: stop that program, or give the pool another listen address",
    ]);
  });

  test('held by the instance’s own master and its workers: no problem', async () => {
    const held = await createListenerProbe(machine()).findHeld([pool('a', '/run/a.sock')]);
    expect(describeHeld(held, 500)).toEqual([]);
    // Another master (a pid of another session) is foreign even while this instance runs.
    expect(describeHeld(held, 800)).toHaveLength(1);
  });

  test('TCP: a wildcard or the same address on the port collides; another port does not', async () => {
    const probe = createListenerProbe(machine());
    for (const listen of ['127.0.0.1:9000', '9000', '0.0.0.0:9000']) {
      const problems = describeHeld(await probe.findHeld([pool('t', listen)]), null);
      expect(problems, listen).toEqual([expect.stringContaining(`listen = ${listen} already has a listening socket, held by pid 600 (node server.js)`)]);
    }
    expect(await probe.findHeld([pool('t', '127.0.0.2:9000'), pool('u', '127.0.0.1:9001')])).toEqual([]);
  });

  test('a socket nobody visible holds: foreign while the instance is stopped, unknowable while it runs', async () => {
    const system = machine();
    system.addFile('/proc/net/unix', UNIX_HEADER + unixLine(44, '/run/root.sock'));
    const held = await createListenerProbe(system).findHeld([pool('r', '/run/root.sock')]);
    expect(describeHeld(held, null)).toEqual([expect.stringContaining('held by a process of another user (run as root to see which)')]);
    expect(describeHeld(held, 500)).toEqual([]);
  });

  test('a stale socket file (nothing listens) and a missing /proc/net/tcp6 are no problem', async () => {
    expect(await createListenerProbe(machine()).findHeld([pool('s', '/run/stale.sock')])).toEqual([]);
  });

  test('a socket bound through a symlinked directory is found by its real path', async () => {
    const system = machine().addDirectories('/srv/sockets').addSymlink('/run/link', '/srv/sockets');
    system.addFile('/proc/net/unix', UNIX_HEADER + unixLine(11, '/run/link/a.sock'));
    const resolve = async (listen: string) => (listen.startsWith('/run/link/') ? listen.replace('/run/link/', '/srv/sockets/') : listen);
    const held = await createListenerProbe(system, resolve).findHeld([pool('w', '/srv/sockets/a.sock')]);
    expect(held.map((h) => h.holders.map((p) => p.pid))).toEqual([[500, 501]]);
  });

  test('one command resolves each socket directory once, however many instances and same-named sockets', async () => {
    // 8 sites, each with php-fpm.sock in its own directory, one of them reached through a symlink.
    const system = machine().addDirectories('/run').addDirectories('/srv/sockets').addSymlink('/run/link', '/srv/sockets');
    const sites = Array.from({ length: 8 }, (_, i) => `/srv/site${i}`);
    for (const dir of sites) system.addDirectories(dir);
    system.addFile('/proc/net/unix', UNIX_HEADER + unixLine(11, '/run/link/php-fpm.sock') + sites.map((dir, i) => unixLine(100 + i, `${dir}/php-fpm.sock`)).join(''));
    const realpaths: string[] = [];
    const realpath = system.realpath.bind(system);
    system.realpath = async (path: string) => {
      realpaths.push(path);
      return realpath(path);
    };
    const ctx = { system, runDir: '/run/fpm', path: undefined, processes: new ProcessTable(system) };
    // As start does: one probe per instance, each comparing every php-fpm.sock by its real path.
    for (let i = 0; i < 4; i += 1) {
      expect(await describeHeldAddresses(ctx, [pool(`i${i}`, `/srv/new${i}/php-fpm.sock`)], null)).toEqual([]);
    }
    const held = await describeHeldAddresses(ctx, [pool('w', '/srv/sockets/php-fpm.sock')], null);
    expect(held).toHaveLength(1);
    expect(held[0]).toContain('held by pid 500');
    expect(realpaths.length).toBe(new Set(realpaths).size);
    // A new command resolves afresh.
    const next = { ...ctx, processes: new ProcessTable(system) };
    await describeHeldAddresses(next, [pool('w', '/srv/sockets/php-fpm.sock')], null);
    expect(realpaths.filter((path) => path === '/run/link')).toHaveLength(2);
  });

  test('a socket a restart handed over is bound at a hidden name and found at the listen path it was published at', async () => {
    const system = machine();
    system.addFile('/proc/net/unix', UNIX_HEADER + unixLine(11, '/run/.a.sock.handover-4242') + unixLine(12, '/run/.a.sock.other-4242'));
    const held = await createListenerProbe(system).findHeld([pool('w', '/run/a.sock')]);
    expect(held.map((h) => h.holders.map((p) => p.pid))).toEqual([[500, 501]]);
    expect(await createListenerProbe(system).findHeld([pool('w', '/run/other.sock')])).toEqual([]);
  });
});
