// Who else runs or listens where an instance would: masters of its binary, config and owner
// that this declaration file cannot prove it started (start refuses them; check, status and
// reload name them), and listen addresses another process holds.
import { posix as path } from 'node:path';
import type { UsableInstance } from '../model/invocation.js';
import type { ControlContext } from './control.js';
import { declaredIdentity, inspectTarget, type Inspection } from './inspect.js';
import { readLiveStat, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import type { DeclaredTarget } from './target.js';
import { isGone } from './terminate.js';
import { createListenerProbe, describeHeld, type ListenerProbe } from './listeners.js';
import type { FpmPool } from '../php-fpm/config/types.js';

/** Masters of this binary, config and owner that run now (as the command's process table saw them). */
export async function findRunningMasters(ctx: ControlContext, expected: ExpectedMaster): Promise<ProcessInfo[]> {
  // Identity first (in memory), then liveness of the few that match: status, stop and check ask
  // this for every instance that does not run, so it must not read /proc per leader each time.
  const matching = (await ctx.processes.leaders()).filter((proc) => verifyIdentity(proc, expected).ok);
  const live = await Promise.all(matching.map(async (proc) => (isGone(proc, await readLiveStat(ctx.system, proc.pid)) ? null : proc)));
  return live.filter((proc): proc is ProcessInfo => proc !== null);
}

/**
 * A master this declaration file cannot prove it started (no record, no pidfile in its run
 * directory naming it): said honestly, with what to do, for start, stop, reload, status and check.
 */
export function describeUnowned(ctx: ControlContext, instance: UsableInstance, running: readonly ProcessInfo[]): string {
  // The master may be this file's own, recorded under another name (the instance was renamed):
  // then the way out is stopping that record, not a kill by hand (tryout 2 finding 5).
  for (const proc of running) {
    const recorded = ctx.records?.find((record) => record.pid === proc.pid && record.startTimeTicks === proc.startTimeTicks && record.name !== instance.name);
    if (recorded !== undefined) {
      return `a php-fpm master of ${instance.config} runs (pid ${proc.pid}), recorded by ${ctx.conf ?? 'this declaration file'} as ${recorded.name} ` +
        `(its old name, no longer declared), so it is not this instance's: run php-fpm-multi stop ${recorded.name} first, then start`;
    }
  }
  const pids = running.map((proc) => proc.pid);
  return `a php-fpm master of ${instance.config} runs (pid ${pids.join(', ')}) without a record of ${ctx.conf ?? 'this declaration file'}, ` +
    'so php-fpm-multi cannot tell it started it and leaves it alone: ' +
    `stop it the way it was started (kill -QUIT ${pids.join(' ')} for one started by hand) or remove the duplicate declaration, then run start`;
}

/**
 * Masters of this declared instance's binary, config and owner that run without anything proving
 * this file started them: the one a pidfile outside the run directory names, and any other in the
 * process table. Empty when its own master runs.
 */
export async function findUnownedMasters(ctx: ControlContext, target: DeclaredTarget, inspection: Inspection): Promise<ProcessInfo[]> {
  if (inspection.state === 'running' || inspection.state === 'orphan') return [];
  const found = await findRunningMasters(ctx, await declaredIdentity(ctx.system, target.instance));
  const named = inspection.state === 'stopped' ? inspection.unowned : undefined;
  return named === undefined || found.some((proc) => proc.pid === named.pid) ? found : [named, ...found];
}

/**
 * What `start` would refuse for a master of this instance's binary, config and owner that this
 * declaration did not start, or null: for `check`, `status` and `reload`, which report it. An
 * inspection already made may be given.
 */
export async function describeUnownedMaster(ctx: ControlContext, target: DeclaredTarget, inspection?: Inspection): Promise<string | null> {
  const running = await findUnownedMasters(ctx, target, inspection ?? (await inspectTarget(ctx.system, target)));
  return running.length === 0 ? null : describeUnowned(ctx, target.instance, running);
}

/**
 * The real paths of unix socket directories, per command (one ControlContext, made under its
 * lock, dropped with it). Every listening socket whose name is a pool's (php-fpm.sock in per-site
 * directories is common) is compared through its directory's real path: start of N instances
 * with M such sockets on the machine walked N × M paths component by component (measured: 3,700
 * lstats for 32 instances next to 32 foreign ones). Each directory is now resolved once per
 * command. The socket tables themselves are still read afresh by each probe; only the "address
 * already held" refusal rests on these paths, as it rests on the command's process table.
 */
const socketDirectories = new WeakMap<ControlContext, Map<string, Promise<string | null>>>();

/** The real path of a unix socket's directory joined with its name (the path itself when unresolvable), once per directory and command. */
async function resolveSocketPathForCommand(ctx: ControlContext, listen: string): Promise<string> {
  if (!listen.startsWith('/')) return listen;
  let resolved = socketDirectories.get(ctx);
  if (resolved === undefined) socketDirectories.set(ctx, (resolved = new Map()));
  const dir = path.dirname(listen);
  let real = resolved.get(dir);
  if (real === undefined) resolved.set(dir, (real = ctx.system.realpath(dir).catch(() => null)));
  const realDir = await real;
  return realDir === null ? listen : path.join(realDir, path.basename(listen));
}

/** A listener probe for one command's instances: reads the kernel's socket tables once (check). */
export function createCommandListenerProbe(ctx: ControlContext): ListenerProbe {
  return createListenerProbe(ctx.system, (listen) => resolveSocketPathForCommand(ctx, listen));
}

/**
 * Why a pool of this instance could not listen where its config says: the address already has a
 * listening socket held by a process that is not `own` (this instance's running master) nor one
 * of its workers. Read afresh unless a probe is given: a restart must look again after its stop.
 */
export async function describeHeldAddresses(
  ctx: ControlContext, pools: readonly FpmPool[], own: number | null, probe: ListenerProbe = createCommandListenerProbe(ctx),
): Promise<string[]> {
  return describeHeld(await probe.findHeld(pools), own);
}
