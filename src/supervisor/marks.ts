// "Held down": the mark `stop` leaves in the run directory for every instance it stopped, so that
// a running supervisor never starts again what an admin stopped. `start` and `restart` remove it.
// The mark is a small JSON file written atomically; its presence is what counts.
import { posix as path } from 'node:path';
import { errnoCode, RECORD_MAX_BYTES, type System } from '../process/system.js';
import { statePath } from './state.js';

const HELD_SUFFIX = '.held.json';
const HELD_MODE = 0o644;

export interface HeldMark {
  /** When stop wrote it (ms since the epoch). */
  atMs: number;
}

export function heldMarkPath(runDir: string, name: string): string {
  return path.join(runDir, `${name}${HELD_SUFFIX}`);
}

/**
 * Best effort: a full or read-only run directory must not turn a stop that happened into a
 * failure (a supervisor, if any, then finds the instance down and starts it: said in the README).
 */
export async function writeHeldMark(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.writeFileAtomic(heldMarkPath(runDir, name), `${JSON.stringify({ atMs: system.now() })}\n`, HELD_MODE);
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}

/**
 * `stop`'s mark, only where a supervisor runs (or its state file was left by one that was killed):
 * without one there is nothing to hold down, and a stop creates nothing in the run directory.
 */
export async function holdIfSupervised(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.lstat(statePath(runDir));
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
    return;
  }
  await writeHeldMark(system, runDir, name);
}

/** Best effort, as writeHeldMark. */
export async function removeHeldMark(system: System, runDir: string, name: string): Promise<void> {
  try {
    await system.unlink(heldMarkPath(runDir, name));
  } catch (error) {
    if (errnoCode(error) === undefined) throw error;
  }
}

/** The mark of an instance, or null when there is none (or it cannot be read: it only explains). */
export async function readHeldMark(system: System, runDir: string, name: string): Promise<HeldMark | null> {
  let text: string;
  try {
    text = await system.readFile(heldMarkPath(runDir, name), { maxBytes: RECORD_MAX_BYTES, noFollow: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    // Present but unreadable (a FIFO planted there is refused unread): still a mark, with no time.
    return { atMs: 0 };
  }
  try {
    const parsed = JSON.parse(text) as Partial<HeldMark>;
    return { atMs: typeof parsed.atMs === 'number' ? parsed.atMs : 0 };
  } catch {
    return { atMs: 0 };
  }
}
