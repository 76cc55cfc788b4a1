// An instance's log location (src/php-fpm/log.ts) from its php-fpm configuration, read the way
// php-fpm reads it (its prefix and environment, through System's bounded reads).
import type { Instance } from '../model/instance.js';
import { locateLog, type LogLocation } from '../php-fpm/log.js';
import { readFpmFacts } from './checks.js';
import { isUsable } from './preflight.js';
import type { System } from './system.js';

/** Where `instance`'s master logs; unknown (with why) when its declaration or config cannot be read. */
export async function locateInstanceLog(system: System, instance: Instance, path: string | undefined): Promise<LogLocation> {
  if (!isUsable(instance)) return { kind: 'unknown', why: instance.problems.join('; ') || 'the instance cannot be used as declared' };
  const { readFpmConfig } = await import('../php-fpm/config/load.js');
  const facts = await readFpmFacts(readFpmConfig, system, instance, path);
  if (facts.config === null) return { kind: 'unknown', why: facts.problem ?? 'its php-fpm configuration cannot be read' };
  return locateLog(facts.config);
}
