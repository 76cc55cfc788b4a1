// File-system fault injection for tests: a small tmpfs mounted on a scratch directory, filled to
// its last byte or remounted read-only by the test.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { expect } from 'vitest';

/** Fills the file system that holds `file` to its last byte (ENOSPC ends it). */
export function fill(file: string): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(4096, 120);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

/** Creates `dir` (0755) and mounts a tmpfs of `size` on it; the test unmounts it (umount -l) in its clean-up. */
export function mountTmpfs(dir: string, size = '512k'): void {
  mkdirSync(dir, { mode: 0o755 });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  expect(mount.status, mount.stderr).toBe(0);
}
