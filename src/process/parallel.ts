// How many operations run at once: one rule for every command (runAtPace).
import { availableParallelism } from 'node:os';

/**
 * Operations run at once. Starting php-fpm is mostly waiting (its launcher, /proc polls), so a
 * few per core keeps the machine busy without a thundering herd of config tests.
 */
export const MAX_PARALLEL_OPERATIONS = Math.max(4, availableParallelism() * 4);

/** Maps every item through `operate`, at most `limit` at a time; results keep the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, operate: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await operate(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * What an operation spends its time on, which decides how many run at once (the one rule):
 * 'works' (start, restart, reload, reopen, configtest run php-fpm's config test) is bounded by
 * MAX_PARALLEL_OPERATIONS; 'waits' (stop waits for processes to exit, status and health read
 * /proc and ask pools) runs for every target at once, for bounding it would make a machine of
 * many slow instances take (instances / bound) × stop_timeout to shut down.
 */
export type Pace = 'works' | 'waits' | 'one-at-a-time';

/** Runs `operate` on every item at the pace's concurrency; results keep the items' order. */
export function runAtPace<T, R>(items: readonly T[], pace: Pace, operate: (item: T) => Promise<R>): Promise<R[]> {
  // 'one-at-a-time': `restart --rolling`, so that the other instances keep serving meanwhile.
  return mapBounded(items, pace === 'waits' ? Infinity : pace === 'one-at-a-time' ? 1 : MAX_PARALLEL_OPERATIONS, operate);
}
