// Who else runs or listens where an instance would: masters of its binary, config and owner
// that this declaration file cannot prove it started (start refuses them; check, status and
// reload name them), and listen addresses another process holds.
import type { UsableInstance } from '../model/invocation.js';
import type { ControlContext } from './control.js';
import { declaredIdentity, inspectTarget, type Inspection } from './inspect.js';
import { readLiveStat, verifyIdentity, type ExpectedMaster, type ProcessInfo } from './proc.js';
import type { DeclaredTarget } from './target.js';
import { isGone } from './terminate.js';
import { createListenerProbe, describeHeld, resolveSocketPath, type ListenerProbe } from './listeners.js';
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

/** A listener probe for one command's instances: reads the kernel's socket tables once (check). */
export function createCommandListenerProbe(ctx: ControlContext): ListenerProbe {
  return createListenerProbe(ctx.system, (listen) => resolveSocketPath(ctx.system, listen));
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
