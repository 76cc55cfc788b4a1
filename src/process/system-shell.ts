// Which shell OpenRC sources conf.d files with: /bin/sh, whatever it links to. Bash arrays in a
// declaration are a syntax error for any other (dash, busybox sh).
import { posix as path } from 'node:path';
import type { System } from './system.js';

/** The shell OpenRC sources conf.d files with (the real path of /bin/sh); null when it cannot be determined. */
export async function findSystemShell(system: System, eprefix: string): Promise<string | null> {
  for (const candidate of [`${eprefix}/bin/sh`, '/bin/sh']) {
    try {
      return await system.realpath(candidate);
    } catch {
      // try the next one
    }
  }
  return null;
}

/** Whether `shell` (a path) is bash, which alone reads the array form. */
export function isBash(shell: string | null): boolean {
  return shell !== null && path.basename(shell) === 'bash';
}
