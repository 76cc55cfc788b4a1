// File-system fault injection for tests: filling a (scratch tmpfs) file system to its last byte.
import { closeSync, openSync, writeSync } from 'node:fs';

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
