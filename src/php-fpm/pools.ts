// What a pool says about itself, asked over FastCGI on its own listen address: its ping page
// (is it serving?) and its status page (how loaded is it?). Used by `status --pools`, `health`
// and the readiness wait of start, restart and reload.
//
// What php-fpm 8.2 does (seen on Debian 12's php8.2-fpm with cgi-fcgi and this client):
// - ping.path answers 200 with exactly ping.response as the body (no newline); any other path
//   is a script request ("File not found." 404 for a missing one).
// - pm.status_path with `?json` answers one JSON object: "pool", "process manager",
//   "start time" (unix seconds), "start since" (seconds), "accepted conn", "listen queue",
//   "max listen queue", "listen queue len" (the socket's backlog; 0 on a unix socket),
//   "idle processes", "active processes", "total processes", "max active processes",
//   "max children reached", "slow requests". The request for the status page is itself
//   accepted by the pool, so "accepted conn" counts it, and "active processes" includes the
//   worker answering it. "pool" is the pool name cut to 31 bytes (the scoreboard's char[32]).
// - pm.status_listen opens a second listener (pool `<name>_status`, one worker) that serves the
//   status page of the pool, at pm.status_path or "/"; it does not serve ping.path, and requests
//   to it are not counted in the pool's "accepted conn".
// - A bare port and `[::]:port` bind the IPv6 wildcard without IPV6_V6ONLY, so 127.0.0.1 and ::1
//   both reach them; `0.0.0.0:port` binds IPv4 only.
// Layout: the address mapping and the status parser are pure; pingPool, readPoolStatus and
// surveyTargets do the IO, over the System's connections (System.connect).

import { FpmMultiError } from '../errors.js';
import { describeFastCgiAddress, requestFastCgi, type FastCgiAddress, type FastCgiResponse } from '../fastcgi/client.js';
import { buildGetParams } from '../fastcgi/params.js';
import type { FpmPool } from './config/types.js';
import { normalizeListen } from './listen.js';
import { inspectTarget, type InstanceState } from '../process/inspect.js';
import type { System } from '../process/system.js';
import type { Target } from '../process/target.js';

/**
 * Per request of `status --pools` and `health`. A ping or a status page is answered in
 * milliseconds by an idle worker; a pool that takes longer has none free (saturated) and is
 * reported as not answering in time.
 */
export const POOL_PROBE_TIMEOUT_MS = 2_000;
/** php-fpm's scoreboard keeps the pool name in a char[32]: the status page shows 31 bytes at most. */
export const SCOREBOARD_POOL_NAME_MAX_BYTES = 31;
/** Loopback addresses a wildcard listener is reached on from this machine. */
const LOOPBACK_IPV4 = '127.0.0.1';
const LOOPBACK_IPV6 = '::1';

// ---------------------------------------------------------------------------------------------
// Errors.

/** A pool's listen value cannot be connected to (php-fpm would not have started with it either). */
export class PoolAddressError extends FpmMultiError {
  constructor(listen: string, reason: string) {
    super(`listen = ${listen} cannot be connected to: ${reason}. Fix the pool's listen directive`);
  }
}

/** The status page's text is not what php-fpm writes (pure layer: the IO edge adds the address). */
export class PoolStatusFormatError extends FpmMultiError {
  readonly problem: string;

  constructor(problem: string) {
    super(`invalid php-fpm status page: ${problem}`);
    this.problem = problem;
  }
}

/** Something answered on the pool's address, but not what this pool would answer. */
export class PoolAnswerError extends FpmMultiError {
  readonly address: FastCgiAddress;

  constructor(address: FastCgiAddress, problem: string, fix: string) {
    super(`FastCGI ${describeFastCgiAddress(address)}: ${problem}. ${fix}`);
    this.address = address;
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses.

/**
 * Where to connect to reach a listener: a unix path as is; a TCP wildcard on loopback (a bare
 * port and 0.0.0.0 on 127.0.0.1, [::] on ::1, which it covers whatever IPV6_V6ONLY says); a
 * specific address or host name as written.
 */
export function resolvePoolAddress(listen: string): FastCgiAddress {
  const endpoint = normalizeListen(listen);
  switch (endpoint.kind) {
    case 'invalid':
      throw new PoolAddressError(listen, endpoint.reason);
    case 'unix':
      return { kind: 'unix', path: endpoint.path };
    case 'tcp': {
      if (endpoint.scope === 'ipv4-any') return { kind: 'tcp', host: LOOPBACK_IPV4, port: endpoint.port };
      if (endpoint.scope === 'any') return { kind: 'tcp', host: listen.includes(':') ? LOOPBACK_IPV6 : LOOPBACK_IPV4, port: endpoint.port };
      return { kind: 'tcp', host: endpoint.host, port: endpoint.port };
    }
  }
}

/** The status page is served on pm.status_listen when the pool has one, else on its listen. */
export function findStatusListen(pool: FpmPool): string | null {
  return pool.statusListen ?? pool.listen;
}

// ---------------------------------------------------------------------------------------------
// The status page.

export interface PoolFigures {
  /** As the status page names the pool (cut to 31 bytes). */
  pool: string;
  processManager: string;
  /** When the pool started, unix seconds. */
  startTimeS: number;
  /** Seconds since the pool started. */
  uptimeS: number;
  acceptedConnections: number;
  /** Requests waiting in the listen backlog for a free worker. */
  listenQueue: number;
  maxListenQueue: number;
  /** Size of the listen backlog (0 on a unix socket: php-fpm cannot read it there). */
  listenQueueLength: number;
  idleProcesses: number;
  activeProcesses: number;
  totalProcesses: number;
  maxActiveProcesses: number;
  /** Times the process manager wanted another worker and pm.max_children forbade it. */
  maxChildrenReached: number;
  slowRequests: number;
}

/** The numeric fields of php-fpm's JSON status page, by the name php-fpm gives them. */
const STATUS_NUMBERS = {
  startTimeS: 'start time',
  uptimeS: 'start since',
  acceptedConnections: 'accepted conn',
  listenQueue: 'listen queue',
  maxListenQueue: 'max listen queue',
  listenQueueLength: 'listen queue len',
  idleProcesses: 'idle processes',
  activeProcesses: 'active processes',
  totalProcesses: 'total processes',
  maxActiveProcesses: 'max active processes',
  maxChildrenReached: 'max children reached',
  slowRequests: 'slow requests',
} as const satisfies Record<string, string>;
type NumericFigure = keyof typeof STATUS_NUMBERS;

/** Reads the body of `<pm.status_path>?json`; fields php-fpm may add later are ignored. */
export function parsePoolStatus(body: string): PoolFigures {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    throw new PoolStatusFormatError(`not JSON (${error instanceof Error ? error.message : String(error)}): ${JSON.stringify(body.slice(0, 64))}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new PoolStatusFormatError(`not a JSON object: ${JSON.stringify(body.slice(0, 64))}`);
  const fields = data as Record<string, unknown>;
  const text = (name: string): string => {
    const value = fields[name];
    if (typeof value !== 'string') throw new PoolStatusFormatError(`"${name}" is ${value === undefined ? 'missing' : `not a string: ${JSON.stringify(value)}`}`);
    return value;
  };
  const numbers = {} as Record<NumericFigure, number>;
  for (const [key, name] of Object.entries(STATUS_NUMBERS) as Array<[NumericFigure, string]>) {
    const value = fields[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new PoolStatusFormatError(`"${name}" is ${value === undefined ? 'missing' : `not a count: ${JSON.stringify(value)}`}`);
    }
    numbers[key] = value;
  }
  return { pool: text('pool'), processManager: text('process manager'), ...numbers };
}

/** Whether the status page's pool name is this pool's (php-fpm cuts it to 31 bytes). */
export function isSamePoolName(reported: string, pool: string): boolean {
  if (reported === pool) return true;
  const bytes = Buffer.from(pool, 'utf8');
  return bytes.length > SCOREBOARD_POOL_NAME_MAX_BYTES && Buffer.from(reported, 'utf8').equals(bytes.subarray(0, SCOREBOARD_POOL_NAME_MAX_BYTES));
}

// ---------------------------------------------------------------------------------------------
// Asking a pool (IO).

function describeReply(response: FastCgiResponse): string {
  const body = response.body.toString('utf8');
  const shown = body.length > 64 ? `${body.slice(0, 64)}…` : body;
  return `${response.status} ${response.statusText} ${JSON.stringify(shown)}`;
}

/** What a pool request needs of the System: its connections (a fake's in unit tests). */
export type PoolConnector = Pick<System, 'connect'>;

/**
 * Resolves when the pool answers its ping page with its ping.response; throws FastCgiError
 * (unreachable, too slow, …) or PoolAnswerError (something else answered). The pool must have a
 * ping.path and a listen.
 */
export async function pingPool(system: PoolConnector, pool: FpmPool, timeoutMs: number): Promise<void> {
  if (pool.pingPath === null || pool.pingResponse === null) throw new RangeError(`pool ${pool.name} has no ping.path`);
  if (pool.listen === null) throw new PoolAddressError('(unset)', 'the pool has no listen directive');
  const address = resolvePoolAddress(pool.listen);
  const response = await requestFastCgi(address, { params: buildGetParams(pool.pingPath), timeoutMs, connect: (to) => system.connect(to) });
  if (response.status !== 200 || response.body.toString('utf8') !== pool.pingResponse) {
    throw new PoolAnswerError(
      address,
      `${pool.pingPath} answered ${describeReply(response)}, not ${JSON.stringify(pool.pingResponse)} (ping.response)`,
      response.status === 404
        ? `The pool there has no ping.path ${pool.pingPath}: another php-fpm pool owns this address, or the running pool predates the config (reload it)`
        : 'Another pool owns this address, or the running pool predates the config: reload it',
    );
  }
}

/**
 * The pool's figures from `<pm.status_path>?json` on its status listener; throws FastCgiError,
 * PoolAnswerError (not a status page, or another pool's). The pool must have a pm.status_path.
 */
export async function readPoolStatus(system: PoolConnector, pool: FpmPool, timeoutMs: number): Promise<PoolFigures> {
  if (pool.statusPath === null) throw new RangeError(`pool ${pool.name} has no pm.status_path`);
  const listen = findStatusListen(pool);
  if (listen === null) throw new PoolAddressError('(unset)', 'the pool has no listen directive');
  const address = resolvePoolAddress(listen);
  const response = await requestFastCgi(address, { params: buildGetParams(`${pool.statusPath}?json`), timeoutMs, connect: (to) => system.connect(to) });
  if (response.status !== 200) {
    throw new PoolAnswerError(
      address,
      `${pool.statusPath}?json answered ${describeReply(response)}, not the status page`,
      'Another pool owns this address, or the running pool predates the config (reload it)',
    );
  }
  let figures: PoolFigures;
  try {
    figures = parsePoolStatus(response.body.toString('utf8'));
  } catch (error) {
    if (!(error instanceof PoolStatusFormatError)) throw error;
    throw new PoolAnswerError(address, `${pool.statusPath}?json is not php-fpm's status page: ${error.problem}`, 'Check that this address is the php-fpm pool');
  }
  if (!isSamePoolName(figures.pool, pool.name)) {
    throw new PoolAnswerError(
      address,
      `the status page is pool "${figures.pool}"'s, not "${pool.name}"'s`,
      'Another pool owns this address (a php-fpm of another instance, or an old one): find it with ss -lxp / ss -ltp',
    );
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Surveying every pool of every instance (IO).

/**
 * - answered: the pool answered correctly;
 * - failed: it did not (message: why, naming the address, and what to check);
 * - not-configured: the pool has no ping.path (ping) or pm.status_path (status);
 * - not-checked: its instance is not running, or the check was not asked for.
 */
export type Check<T> =
  | { kind: 'answered'; value: T }
  | { kind: 'failed'; message: string }
  | { kind: 'not-configured' }
  | { kind: 'not-checked' };

export interface PoolProbe {
  pool: FpmPool;
  ping: Check<null>;
  status: Check<PoolFigures>;
}

export interface InstanceSurvey {
  target: Target;
  state: InstanceState;
  /** Why, in words, when not plainly running or stopped. */
  detail: string;
  pools: PoolProbe[];
}

export interface SurveyOptions {
  ping: boolean;
  status: boolean;
  timeoutMs: number;
}

/** Runs one check; FpmMultiError (and only it) becomes a failure, anything else is a bug. */
async function runCheck<T>(what: string, check: () => Promise<T>): Promise<Check<T>> {
  try {
    return { kind: 'answered', value: await check() };
  } catch (error) {
    if (error instanceof FpmMultiError) return { kind: 'failed', message: `${what}: ${error.message}` };
    throw error;
  }
}

/**
 * Asks one pool for its status page, then its ping. On the same listener they run one after the
 * other, so that the figures count no worker busy with our own ping; a pm.status_listen has its
 * own worker, so there both run at once.
 */
export async function probePool(system: PoolConnector, pool: FpmPool, options: SurveyOptions): Promise<PoolProbe> {
  const notChecked = { kind: 'not-checked' } as const;
  const notConfigured = { kind: 'not-configured' } as const;
  const askStatus = async (): Promise<Check<PoolFigures>> =>
    !options.status ? notChecked : pool.statusPath === null ? notConfigured : runCheck(`status page ${pool.statusPath} failed`, () => readPoolStatus(system, pool, options.timeoutMs));
  const askPing = async (): Promise<Check<null>> =>
    !options.ping ? notChecked : pool.pingPath === null ? notConfigured : runCheck(`ping ${pool.pingPath} failed`, async () => pingPool(system, pool, options.timeoutMs).then(() => null));
  if (pool.statusListen !== null) {
    const [status, ping] = await Promise.all([askStatus(), askPing()]);
    return { pool, ping, status };
  }
  const status = await askStatus();
  return { pool, ping: await askPing(), status };
}

async function surveyTarget(system: System, target: Target, options: SurveyOptions): Promise<InstanceSurvey> {
  const notChecked = (pool: FpmPool): PoolProbe => ({ pool, ping: { kind: 'not-checked' }, status: { kind: 'not-checked' } });
  if (target.kind === 'unusable' && target.record === null) return { target, state: 'unknown', detail: `unusable: ${target.reason}`, pools: [] };
  const inspection = await inspectTarget(system, target);
  const running = inspection.state === 'running' || inspection.state === 'orphan';
  const known = target.kind === 'declared' ? target.pools : [];
  const pools = running ? await Promise.all(known.map((pool) => probePool(system, pool, options))) : known.map(notChecked);
  return { target, state: inspection.state, detail: inspection.detail, pools };
}

/** Every target's state and, for running ones, every pool's answers; all pools are asked at once. */
export async function surveyTargets(system: System, targets: readonly Target[], options: SurveyOptions): Promise<InstanceSurvey[]> {
  return Promise.all(targets.map((target) => surveyTarget(system, target, options)));
}

/** How to get a pool's figures when it has no status page (for `status --pools`). */
export function describeStatusHint(instance: string, pool: FpmPool): string {
  return `no status page: add "pm.status_path = /status" to [${pool.name}] in ${pool.file}, then run php-fpm-multi reload ${instance}`;
}

/**
 * What `health` reports about one instance, one line each: not running, not checkable, or a
 * pool that did not answer its ping (its status page when it has no ping.path). A pool with
 * neither is covered only by its master.
 */
export function describeHealthFailures(survey: InstanceSurvey): string[] {
  const name = survey.target.name;
  if (survey.target.kind === 'unusable') return [`${name}: cannot be checked: ${survey.target.reason}`];
  if (survey.state !== 'running') {
    const detail = survey.detail === '' ? '' : `: ${survey.detail}`;
    const fix = survey.state === 'stopped' || survey.state === 'crashed' ? `; start it: php-fpm-multi start ${name}` : '';
    return [`${name}: not running (${survey.state}${detail})${fix}`];
  }
  return survey.pools.flatMap((probe) => {
    const check = probe.pool.pingPath !== null ? probe.ping : probe.status;
    return check.kind === 'failed' ? [`${name}/${probe.pool.name}: ${check.message}`] : [];
  });
}
