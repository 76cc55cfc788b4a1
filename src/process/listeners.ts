// Who already listens on a pool's address. php-fpm exits 70 at start ("Another FPM instance seems
// to already listen on …") or fails to bind when another process holds the address, and a
// restart would find that out only after its stop: so start, restart, reload and check look
// first. The kernel says which sockets listen (/proc/net/unix: the bound path; /proc/net/tcp and
// tcp6: the local address in state LISTEN) and their inode; /proc/PID/fd links (`socket:[inode]`)
// say which processes hold them. Everything is read through System, so fakes can test it.
import { posix as path } from 'node:path';
import { handedOverAddressOf } from './handover-names.js';
import type { FpmPool } from '../php-fpm/config/types.js';
import { listensOverlap, normalizeListen, type ListenEndpoint } from '../php-fpm/listen.js';
import { listStats, readProcess } from './proc.js';
import type { System } from './system.js';

/** /proc/net/unix `Flags` bit of a listening socket (__SO_ACCEPTCON). */
const UNIX_ACCEPTING_FLAG = 0x10000;
/** /proc/net/tcp `st` of a socket in LISTEN. */
const TCP_LISTEN_STATE = '0A';
/** How many holders a message names before "and N more". */
const HOLDERS_NAMED = 1;

/** A listening socket as the kernel shows it: its address and inode. */
export interface ListeningSocket {
  endpoint: ListenEndpoint;
  inode: number;
}

/** Listening unix sockets of /proc/net/unix (abstract and unnamed ones have no path: skipped). */
export function parseUnixListeners(content: string): ListeningSocket[] {
  const found: ListeningSocket[] = [];
  for (const line of content.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [, , , flags, , , inode, ...rest] = fields;
    const socketPath = rest.join(' ');
    if (!socketPath.startsWith('/') || (Number.parseInt(flags!, 16) & UNIX_ACCEPTING_FLAG) === 0) continue;
    found.push({ endpoint: normalizeListen(socketPath), inode: Number(inode) });
  }
  return found;
}

/** An address of /proc/net/tcp (`0100007F`: 4 bytes, host order) or tcp6 (4 such words) as text. */
export function decodeProcAddress(hex: string): string {
  const bytes: number[] = [];
  for (let word = 0; word < hex.length / 8; word += 1) {
    const value = hex.slice(word * 8, word * 8 + 8);
    // Each 32-bit word is printed in the host's (little-endian) order.
    for (let i = 3; i >= 0; i -= 1) bytes.push(Number.parseInt(value.slice(i * 2, i * 2 + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const mapped = groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff';
  if (mapped) return `::ffff:${bytes.slice(12).join('.')}`;
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/^:::?$/, '::');
}

/** Sockets in LISTEN of /proc/net/tcp or /proc/net/tcp6. */
export function parseTcpListeners(content: string): ListeningSocket[] {
  const found: ListeningSocket[] = [];
  for (const line of content.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== TCP_LISTEN_STATE) continue;
    const [hexAddress, hexPort] = fields[1]!.split(':');
    if (hexAddress === undefined || hexPort === undefined) continue;
    const address = decodeProcAddress(hexAddress);
    const port = Number.parseInt(hexPort, 16);
    found.push({ endpoint: normalizeListen(address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`), inode: Number(fields[9]) });
  }
  return found;
}

/** A process that holds a listening socket. */
export interface SocketHolder {
  pid: number;
  sessionId: number;
  /** Its command line (a php-fpm title: `php-fpm: master process (/etc/…/php-fpm.conf)`). */
  title: string;
}

/** What a pool would bind that some process already listens on. */
export interface HeldAddress {
  pool: string;
  /** `listen` or `pm.status_listen`. */
  key: string;
  listen: string;
  at: { file: string; line: number } | null;
  /** The processes holding the socket that php-fpm-multi could see (all of them, as root). */
  holders: SocketHolder[];
}

/** The kernel's tables, read once per command (see createListenerProbe). */
export interface ListenerProbe {
  /** What each pool's addresses overlap among the listening sockets, with their holders. */
  findHeld(pools: readonly FpmPool[]): Promise<HeldAddress[]>;
}

async function readOptional(system: System, file: string): Promise<string> {
  try {
    return await system.readFile(file);
  } catch {
    return ''; // no IPv6 (tcp6 missing), or no /proc/net: nothing to find there
  }
}

/** Which processes hold each of `inodes`, from /proc/PID/fd. Processes we may not look into are skipped. */
async function findHolders(system: System, inodes: ReadonlySet<number>): Promise<Map<number, SocketHolder[]>> {
  const holders = new Map<number, SocketHolder[]>();
  for (const stat of await listStats(system)) {
    let fds: string[];
    try {
      fds = await system.readdir(`/proc/${stat.pid}/fd`);
    } catch {
      continue; // gone, or another user's (EACCES) as an ordinary user
    }
    const held = new Set<number>();
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(await system.readlink(`/proc/${stat.pid}/fd/${fd}`));
        if (match !== null && inodes.has(Number(match[1]))) held.add(Number(match[1]));
      } catch {
        // closed meanwhile
      }
    }
    if (held.size === 0) continue;
    const proc = await readProcess(system, stat.pid);
    const title = proc === null ? stat.comm : (proc.cmdline.join(' ').trim() || proc.comm);
    for (const inode of held) holders.set(inode, [...(holders.get(inode) ?? []), { pid: stat.pid, sessionId: stat.sessionId, title }]);
  }
  return holders;
}

/**
 * Reads /proc/net/unix, tcp and tcp6 on first use and keeps them for the command: a command
 * acting on many instances reads them once. A unix path is compared as written and through the
 * real path of its directory (`resolve`), as php-fpm and the kernel see the same socket.
 */
export function createListenerProbe(system: System, resolve: (listen: string) => Promise<string> = async (listen) => listen): ListenerProbe {
  let sockets: Promise<ListeningSocket[]> | undefined;
  const readSockets = async (): Promise<ListeningSocket[]> => {
    const [unix, tcp, tcp6] = await Promise.all(['/proc/net/unix', '/proc/net/tcp', '/proc/net/tcp6'].map((file) => readOptional(system, file)));
    return [...parseUnixListeners(unix!), ...parseTcpListeners(tcp!), ...parseTcpListeners(tcp6!)];
  };
  return {
    async findHeld(pools) {
      const wanted: Array<Omit<HeldAddress, 'holders'> & { endpoints: ListenEndpoint[] }> = [];
      for (const pool of pools) {
        const listeners: Array<[string, string | null, { file: string; line: number } | null]> = [
          ['listen', pool.listen, pool.listenAt], ['pm.status_listen', pool.statusListen, pool.statusListenAt],
        ];
        for (const [key, listen, at] of listeners) {
          if (listen === null) continue;
          const endpoints = [normalizeListen(listen)];
          if (endpoints[0]!.kind === 'unix') endpoints.push(normalizeListen(await resolve(listen)));
          wanted.push({ pool: pool.name, key, listen, at, endpoints });
        }
      }
      if (wanted.length === 0) return [];
      sockets ??= readSockets();
      const listening = await sockets;
      const matches: Array<{ use: (typeof wanted)[number]; inodes: number[] }> = [];
      for (const use of wanted) {
        const inodes: number[] = [];
        for (const listener of listening) {
          // A socket handed over by a restart is bound at a hidden name and published at its listen path.
          const published = listener.endpoint.kind === 'unix' ? handedOverAddressOf(listener.endpoint.path) : null;
          const socket: ListeningSocket = published === null ? listener : { ...listener, endpoint: normalizeListen(published) };
          if (use.endpoints.some((endpoint) => listensOverlap(endpoint, socket.endpoint))) inodes.push(socket.inode);
          else if (socket.endpoint.kind === 'unix' && use.endpoints[0]!.kind === 'unix' && path.basename(socket.endpoint.path) === path.basename(use.endpoints[0]!.path)) {
            // Bound through another path to the same directory (a symlink): compare real paths.
            const real = normalizeListen(await resolve(socket.endpoint.path));
            if (use.endpoints.some((endpoint) => listensOverlap(endpoint, real))) inodes.push(socket.inode);
          }
        }
        if (inodes.length > 0) matches.push({ use, inodes });
      }
      if (matches.length === 0) return [];
      const holders = await findHolders(system, new Set(matches.flatMap((match) => match.inodes)));
      return matches.map(({ use, inodes }) => {
        const seen = new Map<number, SocketHolder>();
        for (const inode of inodes) for (const holder of holders.get(inode) ?? []) seen.set(holder.pid, holder);
        // The session leader (a php-fpm master) first: it is what to stop.
        const sorted = [...seen.values()].sort((a, b) => Number(b.pid === b.sessionId) - Number(a.pid === a.sessionId) || a.pid - b.pid);
        return { pool: use.pool, key: use.key, listen: use.listen, at: use.at, holders: sorted };
      });
    },
  };
}

/**
 * Why a pool cannot bind its addresses: held by a process that is not this instance's own master
 * (`own`: its pid, whose session its workers share) nor one of its workers. Without `own` (not
 * running) any holder is foreign. As an ordinary user, holders of other users are invisible: a
 * socket nobody visible holds is foreign only when the instance does not run.
 */
export function describeHeld(held: readonly HeldAddress[], own: number | null): string[] {
  const problems: string[] = [];
  for (const address of held) {
    const foreign = address.holders.filter((holder) => own === null || (holder.pid !== own && holder.sessionId !== own));
    if (address.holders.length > 0 && foreign.length === 0) continue;
    if (address.holders.length === 0 && own !== null) continue;
    const where = address.at === null ? '' : ` (${address.at.file}:${address.at.line})`;
    const named = foreign.slice(0, HOLDERS_NAMED).map((holder) => `pid ${holder.pid} (${holder.title})`).join(', ');
    const more = foreign.length > HOLDERS_NAMED ? ` and ${foreign.length - HOLDERS_NAMED} more process${foreign.length - HOLDERS_NAMED === 1 ? '' : 'es'}` : '';
    const who = foreign.length === 0 ? 'held by a process of another user (run as root to see which)' : `held by ${named}${more}`;
    problems.push(
      `pool '${address.pool}'${where}: ${address.key} = ${address.listen} already has a listening socket, ${who}, which is not this instance's master, ` +
        `so php-fpm could not listen there: stop that program, or give the pool another ${address.key} address`,
    );
  }
  return problems;
}
