// Which instances a command line names (`1 web`, `1,3-5`): declared ones, and for commands that
// reach what runs, recorded ones no longer declared. An unknown name is a usage error. Pure.
import { UsageError } from '../errors.js';
import type { Instance } from './instance.js';
import { formatSuggestion } from './suggest.js';

const RANGE_PATTERN = /^(\d+)-(\d+)$/;

function listKnown(declared: readonly string[], recorded: readonly string[]): string {
  const onlyRecorded = recorded.filter((name) => !declared.includes(name));
  if (declared.length === 0 && onlyRecorded.length === 0) return 'none are declared';
  const parts: string[] = [];
  if (declared.length > 0) parts.push(`known: ${declared.join(', ')}`);
  if (onlyRecorded.length > 0) parts.push(`recorded (no longer declared): ${onlyRecorded.join(', ')}`);
  return parts.join('; ');
}

/** Names in a `3-5` range, which must all be known. */
function expandRange(first: number, last: number, token: string): string[] {
  if (first > last) throw new UsageError(`instance range "${token}" runs backwards; write ${last}-${first}`);
  return Array.from({ length: last - first + 1 }, (_, i) => String(first + i));
}

/** Every name the command line gives (`1 web`, `1,3-5`); each must be declared or recorded. */
function readNames(declared: readonly string[], recorded: readonly string[], selection: readonly string[]): Set<string> {
  const wanted = new Set<string>();
  for (const token of selection.flatMap((arg) => arg.split(','))) {
    if (token === '') continue;
    const range = RANGE_PATTERN.exec(token);
    const names = range ? expandRange(Number(range[1]), Number(range[2]), token) : [token];
    for (const name of names) {
      if (!declared.includes(name) && !recorded.includes(name)) {
        // A number one off another is no typo ("6" is not a misspelt "5"), nor is one letter for
        // another ("c" for "a"): only names of three characters or more get a suggestion.
        const suggestion = /^\d+$/.test(name) || name.length < 3 ? '' : formatSuggestion(name, [...declared, ...recorded]);
        throw new UsageError(`no instance "${name}" in the declaration file${suggestion} (${listKnown(declared, recorded)})`);
      }
      wanted.add(name);
    }
  }
  return wanted;
}

/**
 * The instances named on the command line (`1 web`, `1,3-5`), in declaration order; with no
 * names, every enabled instance. An unknown name is a usage error listing the known ones.
 */
export function selectInstances(instances: readonly Instance[], selection: readonly string[]): Instance[] {
  return selectTargets(instances, [], selection).instances;
}

/**
 * As selectInstances, where the names of records (instances the controller started, declared or
 * not) are valid names too: `stop blog` reaches an instance removed from the file. `recorded`
 * are the selected names that only a record knows, in the records' order.
 */
export function selectTargets(
  instances: readonly Instance[], recordedNames: readonly string[], selection: readonly string[],
): { instances: Instance[]; recorded: string[] } {
  if (selection.length === 0) return { instances: instances.filter((instance) => instance.enabled), recorded: [] };
  const declared = instances.map((instance) => instance.name);
  const wanted = readNames(declared, recordedNames, selection);
  return {
    instances: instances.filter((instance) => wanted.has(instance.name)),
    recorded: recordedNames.filter((name) => wanted.has(name) && !declared.includes(name)),
  };
}
