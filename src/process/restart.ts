// What refuses a restart before its stop half: an address another process holds, a pidfile or
// record that could not be rewritten, or an orphan record's master holding what an instance to
// start needs. Nothing here signals or writes.
import { FpmMultiError } from '../errors.js';
import type { ControlContext } from './control.js';
import { inspectTarget, type Inspection } from './inspect.js';
import type { ProcessInfo } from './proc.js';
import { errnoCode } from './system.js';
import type { DeclaredTarget, Target } from './target.js';
import { describeUnwritable } from './write-probe.js';
import { describeHeldAddresses, createCommandListenerProbe } from './occupants.js';

/**
 * What must hold before restart's stop half, beyond what check reports: null when the start half
 * can work. A running instance whose pidfile php-fpm could not rewrite, or whose record the
 * controller could not write (a full or read-only file system), is left serving.
 */
export async function describeRestartRefusal(ctx: ControlContext, target: DeclaredTarget): Promise<string | null> {
  const inspection = await inspectTarget(ctx.system, target);
  const running = inspection.state === 'running' || inspection.state === 'orphan';
  // An address another process holds: the start half's php-fpm would exit 70 or fail to bind.
  const held = await describeHeldAddresses(ctx, target.pools, running ? inspection.pid : null);
  if (held.length > 0) return held.join('; ');
  if (!running) return null; // nothing to keep serving: start says what fails
  return describeUnwritable(ctx.system, target.instance.pidfile, ctx.runDir);
}

/**
 * restart checks everything before it stops anything: an instance to start whose listen address
 * (or config) the running master of an orphan record of this file holds would be refused by the
 * start half once that orphan is stopped in parallel, or not at all: the whole restart is refused,
 * naming the orphan and the way out (tryout 2 finding 5). null when nothing refuses it.
 */
export async function describeOrphanHolding(ctx: ControlContext, targets: readonly Target[]): Promise<string | null> {
  const orphans: Array<{ name: string; master: ProcessInfo }> = [];
  for (const target of targets) {
    if ((target.kind !== 'orphan' && target.kind !== 'launched') || target.why !== 'undeclared') continue;
    const inspection = await inspectQuietly(ctx, target);
    if (inspection?.state === 'running' || inspection?.state === 'orphan') orphans.push({ name: target.name, master: inspection.master });
  }
  if (orphans.length === 0) return null;
  const probe = createCommandListenerProbe(ctx);
  const refusals: string[] = [];
  for (const target of targets) {
    if (target.kind !== 'declared') continue;
    const inspection = await inspectQuietly(ctx, target);
    // Running, or a state the restart itself names for that instance (an untrusted pidfile): not this case.
    if (inspection === null || inspection.state === 'running' || inspection.state === 'orphan') continue;
    const held = await probe.findHeld(target.pools);
    for (const { name, master } of orphans) {
      const holds = master.cmdline.join(' ').includes(`(${target.instance.config})`) ||
        held.some((address) => address.holders.some((holder) => holder.pid === master.pid || holder.sessionId === master.pid));
      if (holds) {
        refusals.push(
          `${target.name}: the address is held by ${name} (pid ${master.pid}), recorded by ${ctx.conf ?? 'this declaration file'} under its old name: run php-fpm-multi stop ${name} first`,
        );
      }
    }
  }
  return refusals.length === 0 ? null : `nothing was restarted (nothing stopped): a restart would stop the orphan and could not start the instance in its place:\n  ${refusals.join('\n  ')}`;
}

/** inspectTarget, with a pidfile or record the system refuses to show left to the target's own outcome (null). */
async function inspectQuietly(ctx: ControlContext, target: Target): Promise<Inspection | null> {
  try {
    return await inspectTarget(ctx.system, target);
  } catch (error) {
    if (!(error instanceof FpmMultiError) && errnoCode(error) === undefined) throw error;
    return null;
  }
}
