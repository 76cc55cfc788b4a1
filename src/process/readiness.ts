// When a started or reloaded instance is ready: its pidfile names a new verified master
// (waitForMaster), and every pool with a ping.path answers it (waitUntilPoolsAnswer), for a live
// master does not mean PHP is served.
import { FpmMultiError } from '../errors.js';
import { describeFastCgiAddress } from '../fastcgi/client.js';
import type { FpmPool } from '../php-fpm/config/types.js';
import { pingPool, PoolAddressError, resolvePoolAddress } from '../php-fpm/pools.js';
import { PidfileContentError, readTrustedPidfile } from './pidfile.js';
import { readLiveStat, readProcess, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import type { System } from './system.js';
import { isGone, POLL_INTERVAL_MS } from './terminate.js';

/**
 * One readiness ping: short, so that a request lost to a pool still coming up is retried well
 * before start_timeout; a started pool answers in about a millisecond.
 */
export const READINESS_PING_TIMEOUT_MS = 1_000;

/** A pool still gets one fair try when the master itself used up start_timeout. */
const READINESS_MIN_PING_TIMEOUT_MS = 100;

/**
 * Polls the pidfile until it names a verified master other than `oldPid`, or the deadline. With
 * `old` (a reload), returns null as soon as the old master is gone and the pidfile names no new
 * one: the re-executed php-fpm writes its pidfile before its old process exits, so waiting on
 * would only wait out start_timeout for a master that died.
 */
export async function waitForMaster(
  system: System, pidfile: string, expected: ExpectedMaster, old: ProcessInfo | null, deadline: number,
): Promise<ProcessInfo | null> {
  const named = async (): Promise<ProcessInfo | null> => {
    let pid: number | null = null;
    try {
      pid = await readTrustedPidfile(system, pidfile, expected.uid);
    } catch (error) {
      // php-fpm truncates and rewrites its pidfile: an empty read is a moment, not corruption.
      if (!(error instanceof PidfileContentError)) throw error;
    }
    if (pid === null || pid === old?.pid) return null;
    const proc = await readProcess(system, pid);
    return proc !== null && verifyIdentity(proc, expected).ok ? proc : null;
  };
  for (;;) {
    const found = await named();
    if (found !== null) return found;
    // Gone now: one more look, for a new master that wrote the pidfile just before the old exited.
    if (old !== null && isGone(old, await readLiveStat(system, old.pid))) return named();
    if (system.now() >= deadline) return null;
    await system.sleep(POLL_INTERVAL_MS);
  }
}

/** A pool's address for messages: `unix:/run/a.sock`, `tcp:127.0.0.1:9000`, else its listen value. */
function describePoolListen(pool: FpmPool): string {
  if (pool.listen === null) return 'no listen';
  try {
    return describeFastCgiAddress(resolvePoolAddress(pool.listen));
  } catch {
    return pool.listen;
  }
}

/** Pings one pool until it answers its ping.response or the deadline passes; returns why not, or null. */
async function waitUntilPoolAnswers(system: System, pool: FpmPool, deadline: number): Promise<string | null> {
  for (;;) {
    const remainingMs = deadline - system.now();
    try {
      await pingPool(system, pool, Math.min(READINESS_PING_TIMEOUT_MS, Math.max(READINESS_MIN_PING_TIMEOUT_MS, remainingMs)));
      return null;
    } catch (error) {
      if (!(error instanceof FpmMultiError)) throw error;
      if (error instanceof PoolAddressError || system.now() >= deadline) return error.message;
    }
    await system.sleep(POLL_INTERVAL_MS);
  }
}

export interface Readiness {
  /** Pools with a ping.path that answered it. */
  ready: string[];
  /** One line per pool that did not answer in time: the pool, its address and the last error. */
  failures: string[];
}

/**
 * Readiness: a live master does not mean PHP is served. Every pool with a ping.path is pinged
 * (all at once, each retried every POLL_INTERVAL_MS) until it answers or the deadline passes.
 */
export async function waitUntilPoolsAnswer(system: System, pools: readonly FpmPool[], deadline: number): Promise<Readiness> {
  const pingable = pools.filter((pool) => pool.pingPath !== null);
  const errors = await Promise.all(pingable.map((pool) => waitUntilPoolAnswers(system, pool, deadline)));
  const readiness: Readiness = { ready: [], failures: [] };
  pingable.forEach((pool, index) => {
    const error = errors[index];
    if (error === null || error === undefined) readiness.ready.push(pool.name);
    else readiness.failures.push(`pool '${pool.name}' (${describePoolListen(pool)}) did not answer ping ${pool.pingPath} with ${JSON.stringify(pool.pingResponse)}: ${error}`);
  });
  return readiness;
}

export function describeReady(readiness: Readiness): string {
  return readiness.ready.length === 0 ? '' : `; ready: ${readiness.ready.join(', ')} answer${readiness.ready.length === 1 ? 's' : ''} ping`;
}

/** `<what failed>, <consequence>:` then one indented line per pool that did not answer. */
export function describeNotReady(readiness: Readiness, seconds: number, consequence: string): string {
  const pools = readiness.failures.length === 1 ? 'a pool' : `${readiness.failures.length} pools`;
  return `${pools} did not answer within ${seconds} s (start_timeout; raise it if the pool is only slow to start), ${consequence}:` +
    `\n    ${readiness.failures.join('\n    ')}`;
}
