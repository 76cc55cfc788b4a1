// Listen addresses: what php-fpm binds for a `listen` value (fpm_sockets.c, checked with `ss`),
// and which listeners of all instances cannot be bound together. Pure: a unix socket's real path
// (symlinked directories) is resolved by the caller and passed in.
import { posix } from 'node:path';
import { STATUS_LISTENER_SUFFIX, type FpmPool, type SourceRef } from './config/types.js';

export const MIN_TCP_PORT = 1;
export const MAX_TCP_PORT = 65_535;

/** fpm_sockets_domain_from_address: a ':' or only digits means TCP, anything else a unix path. */
export function isTcpAddress(listen: string): boolean {
  return listen.includes(':') || /^\d*$/.test(listen);
}

export type TcpScope =
  /** Bare port or [::]: php-fpm binds [::] without IPV6_V6ONLY, i.e. every IPv4 and IPv6 address. */
  | 'any'
  /** 0.0.0.0: every IPv4 address. */
  | 'ipv4-any'
  | 'ipv4'
  | 'ipv6'
  /** A name php-fpm resolves when it starts; its address is unknown here. */
  | 'hostname';

export type ListenEndpoint =
  | { kind: 'unix'; path: string; key: string }
  | { kind: 'tcp'; scope: TcpScope; host: string; port: number; key: string }
  | { kind: 'invalid'; raw: string; reason: string; key: string };

const IPV4_MAPPED_PREFIX = '::ffff:';
// On Debian /etc/hosts lists 127.0.0.1 first, and php-fpm binds the first address it resolves.
const LOOPBACK_NAME = 'localhost';
const LOOPBACK_IPV4 = '127.0.0.1';

function parsePort(text: string): number | null {
  if (!/^[ \t]*\+?\d+$/.test(text)) return null;
  const port = Number.parseInt(text, 10);
  return port >= MIN_TCP_PORT && port <= MAX_TCP_PORT ? port : null;
}

/** WHATWG host parsing: canonical IPv6, and IPv4 in inet_aton's forms (127.1, 0x7f000001, 0). */
function parseHost(host: string): string | null {
  try {
    return new URL(`http://${host.includes(':') ? `[${host}]` : host}/`).hostname;
  } catch {
    return null;
  }
}

function ipv4FromMapped(ipv6: string): string | null {
  const match = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ipv6);
  if (match?.[1] === undefined || match[2] === undefined) return null;
  const high = Number.parseInt(match[1], 16);
  const low = Number.parseInt(match[2], 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

function tcpEndpoint(scope: TcpScope, host: string, port: number): ListenEndpoint {
  const shown = scope === 'any' || scope === 'ipv6' ? `[${host}]` : host;
  return { kind: 'tcp', scope, host, port, key: `tcp:${shown}:${port}` };
}

function invalidEndpoint(raw: string, reason: string): ListenEndpoint {
  return { kind: 'invalid', raw, reason, key: `invalid:${raw}` };
}

function classifyHost(rawHost: string, port: number, raw: string): ListenEndpoint {
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  if (host === '') return invalidEndpoint(raw, 'the address before the port is empty');
  if (host.toLowerCase() === LOOPBACK_NAME) return tcpEndpoint('ipv4', LOOPBACK_IPV4, port);
  const parsed = parseHost(host);
  if (parsed === null) return invalidEndpoint(raw, `'${host}' is neither an IP address nor a host name`);
  if (parsed.startsWith('[')) {
    const ipv6 = parsed.slice(1, -1);
    if (ipv6 === '::') return tcpEndpoint('any', '::', port);
    const mapped = ipv6.startsWith(IPV4_MAPPED_PREFIX) ? ipv4FromMapped(ipv6) : null;
    if (mapped === null) return tcpEndpoint('ipv6', ipv6, port);
    return tcpEndpoint(mapped === '0.0.0.0' ? 'ipv4-any' : 'ipv4', mapped, port);
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(parsed)) return tcpEndpoint(parsed === '0.0.0.0' ? 'ipv4-any' : 'ipv4', parsed, port);
  return tcpEndpoint('hostname', parsed, port);
}

/**
 * The endpoint a pool's `listen` (as FpmPool.listen holds it: unix paths already absolute)
 * binds, with a canonical key: equal keys always collide; `listensOverlap` also sees wildcards.
 */
export function normalizeListen(listen: string): ListenEndpoint {
  if (listen === '') return invalidEndpoint(listen, 'the address is empty');
  if (!isTcpAddress(listen)) {
    const path = posix.normalize(listen).replace(/(.)\/+$/, '$1');
    return { kind: 'unix', path, key: `unix:${path}` };
  }
  const colon = listen.lastIndexOf(':');
  const portText = colon === -1 ? listen : listen.slice(colon + 1);
  const port = parsePort(portText);
  if (port === null) return invalidEndpoint(listen, `'${portText}' is not a port between ${MIN_TCP_PORT} and ${MAX_TCP_PORT}`);
  return colon === -1 ? tcpEndpoint('any', '::', port) : classifyHost(listen.slice(0, colon), port, listen);
}

function isIpv4Family(scope: TcpScope): boolean {
  return scope === 'ipv4' || scope === 'ipv4-any';
}

/** Whether two endpoints cannot both be bound (same socket path, or same port and addresses that meet). */
export function listensOverlap(a: ListenEndpoint, b: ListenEndpoint): boolean {
  if (a.kind === 'invalid' || b.kind === 'invalid') return false;
  if (a.kind === 'unix' || b.kind === 'unix') return a.key === b.key;
  if (a.port !== b.port) return false;
  if (a.key === b.key || a.scope === 'any' || b.scope === 'any') return true;
  if (a.scope === 'ipv4-any' || b.scope === 'ipv4-any') {
    const other = a.scope === 'ipv4-any' ? b : a;
    // A host name may resolve to an IPv4 address: assume the worst.
    return isIpv4Family(other.scope) || other.scope === 'hostname';
  }
  return false;
}

export interface FpmInstancePools {
  name: string;
  pools: readonly FpmPool[];
}

export interface ListenUse {
  instance: string;
  /** The pool, or `<pool>_status` for its pm.status_listen listener. */
  pool: string;
  listen: string;
  endpoint: ListenEndpoint;
  file: string;
  line: number;
}

export interface ListenConflict {
  first: ListenUse;
  second: ListenUse;
  /** The shared address, or both addresses when a wildcard covers the other one. */
  address: string;
  message: string;
}

/**
 * Where a unix socket path really is: the caller resolves symlinked directories (IO) and passes
 * the answer in, so that finding conflicts stays pure. The identity when nothing is known.
 */
export type ListenResolver = (listen: string) => string;

function collectListenUses(instance: FpmInstancePools, resolve: ListenResolver): ListenUse[] {
  const uses: ListenUse[] = [];
  for (const pool of instance.pools) {
    const listeners: [string, string | null, SourceRef | null][] = [
      [pool.name, pool.listen, pool.listenAt],
      [`${pool.name}${STATUS_LISTENER_SUFFIX}`, pool.statusListen, pool.statusListenAt],
    ];
    for (const [name, listen, at] of listeners) {
      if (listen === null) continue;
      const where = at ?? pool;
      uses.push({ instance: instance.name, pool: name, listen, endpoint: normalizeListen(resolve(listen)), file: where.file, line: where.line });
    }
  }
  return uses;
}

function displayEndpoint(endpoint: ListenEndpoint): string {
  return endpoint.key.replace(/^(unix|tcp|invalid):/, '');
}

function describeConflict(first: ListenUse, second: ListenUse): { address: string; message: string } {
  const a = displayEndpoint(first.endpoint);
  const b = displayEndpoint(second.endpoint);
  const address = a === b ? a : `${a} and ${b}`;
  const side = (use: ListenUse): string => `instance '${use.instance}' pool '${use.pool}' (${use.file}:${use.line}, listen = ${use.listen})`;
  const verb = a === b ? `both listen on ${a}` : `listen on ${a} and ${b}, which overlap`;
  return {
    address,
    message: `${side(first)} and ${side(second)} ${verb}. Give each pool its own socket path or port.`,
  };
}

/** The first listener seen of each kind on one port: enough to find what a new one overlaps. */
interface PortUses {
  byKey: Map<string, ListenUse>;
  /** The first of any scope (a wildcard `any` overlaps it). */
  first: ListenUse;
  any: ListenUse | null;
  ipv4Any: ListenUse | null;
  /** The first IPv4 address or host name (an `ipv4-any` overlaps it). */
  ipv4OrHostname: ListenUse | null;
}

function earliest(uses: readonly (ListenUse | null | undefined)[], order: Map<ListenUse, number>): ListenUse | null {
  let best: ListenUse | null = null;
  for (const use of uses) {
    if (use !== null && use !== undefined && (best === null || order.get(use)! < order.get(best)!)) best = use;
  }
  return best;
}

/** The earliest listener on this port that `use` cannot be bound together with (see listensOverlap). */
function findOverlapOnPort(ports: PortUses, use: ListenUse, order: Map<ListenUse, number>): ListenUse | null {
  const endpoint = use.endpoint;
  if (endpoint.kind !== 'tcp') return null;
  if (endpoint.scope === 'any') return ports.first;
  const candidates = [ports.byKey.get(endpoint.key), ports.any];
  if (isIpv4Family(endpoint.scope) || endpoint.scope === 'hostname') candidates.push(ports.ipv4Any);
  if (endpoint.scope === 'ipv4-any') candidates.push(ports.ipv4OrHostname);
  return earliest(candidates, order);
}

function rememberOnPort(ports: Map<number, PortUses>, use: ListenUse): void {
  const endpoint = use.endpoint;
  if (endpoint.kind !== 'tcp') return;
  let entry = ports.get(endpoint.port);
  if (entry === undefined) {
    entry = { byKey: new Map(), first: use, any: null, ipv4Any: null, ipv4OrHostname: null };
    ports.set(endpoint.port, entry);
  }
  if (!entry.byKey.has(endpoint.key)) entry.byKey.set(endpoint.key, use);
  if (endpoint.scope === 'any') entry.any ??= use;
  if (endpoint.scope === 'ipv4-any') entry.ipv4Any ??= use;
  if (endpoint.scope === 'ipv4' || endpoint.scope === 'hostname') entry.ipv4OrHostname ??= use;
}

/**
 * Listeners that cannot be bound together, between instances and inside one (php-fpm would fail
 * to start on the latter too): each listener that overlaps an earlier one is reported once, with
 * the earliest it overlaps. Linear in the number of listeners (a thousand instances on one
 * socket give 999 conflicts, not half a million). Listeners php-fpm cannot bind are skipped.
 * `resolve` gives the real path of a unix socket (symlinked directories resolved by the caller).
 */
export function findListenConflicts(
  instances: readonly FpmInstancePools[], resolve: ListenResolver = (listen) => listen,
): ListenConflict[] {
  const uses = instances.flatMap((instance) => collectListenUses(instance, resolve));
  const order = new Map(uses.map((use, index) => [use, index]));
  const unix = new Map<string, ListenUse>();
  const ports = new Map<number, PortUses>();
  const conflicts: ListenConflict[] = [];
  for (const use of uses) {
    let first: ListenUse | null = null;
    if (use.endpoint.kind === 'unix') {
      first = unix.get(use.endpoint.key) ?? null;
      if (first === null) unix.set(use.endpoint.key, use);
    } else if (use.endpoint.kind === 'tcp') {
      const onPort = ports.get(use.endpoint.port);
      first = onPort === undefined ? null : findOverlapOnPort(onPort, use, order);
      rememberOnPort(ports, use);
    }
    if (first !== null) conflicts.push({ first, second: use, ...describeConflict(first, use) });
  }
  return conflicts;
}
