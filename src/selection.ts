import { UsageError } from './errors.js';
import type { Instance } from './model.js';

const RANGE_PATTERN = /^(\d+)-(\d+)$/;

function listKnown(instances: readonly Instance[]): string {
  return instances.length === 0 ? 'none are declared' : `known: ${instances.map((i) => i.name).join(', ')}`;
}

/** Names in a `3-5` range, which must all be declared. */
function expandRange(first: number, last: number, token: string): string[] {
  if (first > last) throw new UsageError(`instance range "${token}" runs backwards; write ${last}-${first}`);
  return Array.from({ length: last - first + 1 }, (_, i) => String(first + i));
}

/**
 * The instances named on the command line (`1 web`, `1,3-5`), in declaration order; with no
 * names, every enabled instance. An unknown name is a usage error listing the known ones.
 */
export function selectInstances(instances: readonly Instance[], selection: readonly string[]): Instance[] {
  if (selection.length === 0) return instances.filter((instance) => instance.enabled);
  const wanted = new Set<string>();
  for (const token of selection.flatMap((arg) => arg.split(','))) {
    if (token === '') continue;
    const range = RANGE_PATTERN.exec(token);
    const names = range ? expandRange(Number(range[1]), Number(range[2]), token) : [token];
    for (const name of names) {
      if (!instances.some((instance) => instance.name === name)) {
        throw new UsageError(`no instance "${name}" in the declaration file (${listKnown(instances)})`);
      }
      wanted.add(name);
    }
  }
  return instances.filter((instance) => wanted.has(instance.name));
}
