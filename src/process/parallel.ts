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
