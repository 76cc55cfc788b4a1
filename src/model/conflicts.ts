// Enabled instances that share a config or a pidfile: they would fight over one master. Each
// group is reported once for the whole run, and its later instances carry the problem. Pure.
import type { Instance } from './instance.js';

/** How many names of a group sharing a file a message lists before "(N more)": output stays small. */
export const MAX_NAMES_LISTED = 3;

/** `A (line 1), B (line 2), C (line 3), … (997 more)`. */
function listSome(instances: readonly Instance[]): string {
  const shown = instances.slice(0, MAX_NAMES_LISTED).map((i) => `${i.variable} (line ${i.line})`);
  const more = instances.length - shown.length;
  return more > 0 ? `${shown.join(', ')}, … (${more} more)` : shown.join(', ');
}

/**
 * Two enabled instances must never share a config or a pidfile: they would fight over one master.
 * The first declared keeps the file (it may well be the one running: `stop` and `status` must still
 * reach it); every later one gets the problem, and the group is reported once in `conflicts`.
 * Linear in the number of instances, as is its output.
 */
export function reportSharedFiles(instances: Instance[], sharingProblems: Set<string>): string[] {
  const conflicts: string[] = [];
  for (const field of ['config', 'pidfile'] as const) {
    const users = new Map<string, Instance[]>();
    for (const instance of instances) {
      const file = instance[field];
      if (!instance.enabled || file === null) continue;
      const sharing = users.get(file);
      if (sharing === undefined) users.set(file, [instance]);
      else sharing.push(instance);
    }
    for (const [file, sharing] of users) {
      if (sharing.length < 2) continue;
      const [first, ...later] = sharing as [Instance, ...Instance[]];
      conflicts.push(
        `${field} ${file} is used by ${first.variable} (line ${first.line}) and also by ${listSome(later)}: give ${later.length === 1 ? 'the later one' : 'each later one'} its own ${field} (or remove ${later.length === 1 ? 'it' : 'them'}, or set enabled=no)`,
      );
      // One string for the whole group: check prints the group once, not once per instance.
      const problem = `${field} ${file} is already used by ${first.variable} (line ${first.line}), declared first; give this instance its own ${field}`;
      sharingProblems.add(problem);
      for (const instance of later) instance.problems.push(problem);
    }
  }
  return conflicts;
}
