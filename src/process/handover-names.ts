// The names a restart's socket hand-over gives the sockets it creates (src/process/handover.ts),
// in one place, so that the listener probe (src/process/listeners.ts) maps them back to the
// listen paths they were published at without loading the hand-over itself.
import { posix as path } from 'node:path';

/**
 * Where a handed-over socket is bound: a hidden name beside its listen path, then renamed over it.
 * The kernel keeps the bind-time name (/proc/net/unix shows it), so whoever looks for the socket
 * now at the listen path maps the name back with handedOverAddressOf.
 */
export function handoverBindPath(address: string, controllerPid: number): string {
  return path.join(path.dirname(address), `.${path.basename(address)}.handover-${controllerPid}`);
}

/** The listen path a socket bound at a hand-over name was published at; null for any other name. */
export function handedOverAddressOf(boundPath: string): string | null {
  const match = /^\.(.+)\.handover-[1-9][0-9]*$/.exec(path.basename(boundPath));
  return match === null ? null : path.join(path.dirname(boundPath), match[1]!);
}
