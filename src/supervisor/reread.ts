// SIGHUP: the supervisor reads its declaration file again. An unusable file, or a changed run
// directory, keeps the last good declaration; otherwise added instances are supervised, removed or
// disabled ones stopped as `stop` does (under the lock), and changes only a restart applies named.
import { mapBounded } from '../process/parallel.js';
import {
  declaredTargets, preflight, readDeclared, refuseCollidingDeclaration, stopOne, withLock, type Declared, type Preflight,
} from './actions.js';
import { warnUnpingable } from './health.js';
import { describeChange, oneLine } from './policy.js';
import { clearTimer, newWatched, type Host } from './watched.js';

export async function reread(host: Host): Promise<void> {
  const keep = 'still supervising the last good declaration';
  let declared: Declared;
  let names: string[];
  let pf: Preflight | null;
  try {
    declared = readDeclared(host.io, host.conf);
    names = host.chooseNames(declared, false);
    pf = await preflight(host.system, declared, names, host.io.env['PATH']);
    refuseCollidingDeclaration(pf);
  } catch (error) {
    host.emit(null, 'reread', `${host.conf} is unusable (${oneLine(error instanceof Error ? error.message : String(error))}); ${keep}`);
    return;
  }
  if (declared.runDir !== host.ctx.runDir) {
    host.emit(null, 'reread', `the run directory changed (${host.ctx.runDir} → ${declared.runDir}): restart the supervisor to use it; ${keep}`);
    return;
  }
  const targets = declaredTargets(declared, names, pf);
  const added: string[] = [];
  const changed: string[] = [];
  const removed = [...host.watched.keys()].filter((name) => !names.includes(name));
  host.declared = declared;
  host.preflightResult = pf;
  for (const target of targets) {
    const w = host.watched.get(target.name);
    if (w === undefined) {
      host.watched.set(target.name, newWatched(target));
      added.push(target.name);
      continue;
    }
    if (target.instance === null) {
      host.emit(target.name, 'warning', `its declaration now has a problem (${oneLine(target.unusable ?? '')}); supervised as it was`);
      continue;
    }
    const change = describeChange(w.target, target);
    if (change !== null) {
      changed.push(target.name);
      host.emit(target.name, 'needs-restart', `${change} changed in ${host.conf}: run php-fpm-multi restart ${target.name} to apply it (not restarted by the supervisor)`);
    }
    w.target = target;
  }
  host.emit(null, 'reread', `${host.conf}: added ${added.join(', ') || 'none'}; removed ${removed.join(', ') || 'none'}; changed ${changed.join(', ') || 'none'}`);
  if (removed.length > 0) {
    for (const name of removed) {
      const w = host.watched.get(name)!;
      clearTimer(host, w);
      w.state = 'stopping';
    }
    await withLock(host.ctx, declared, pf, async (view) => {
      const targetsNow = await view.targets(removed);
      await mapBounded(removed, Infinity, async (name) => {
        const target = targetsNow.find((t) => t.name === name);
        const outcome = target === undefined ? { name, ok: true, message: 'not running' } : await stopOne(view.control, target);
        host.emit(name, 'stopped', `removed from ${host.conf} or disabled: ${oneLine(outcome.message)}`);
        host.watched.delete(name);
        host.jobs.delete(name);
      });
    });
  }
  for (const name of added) {
    warnUnpingable(host, host.watched.get(name)!);
    host.enqueue(name, { kind: 'check' });
  }
}
