// Preloaded (node --expose-gc --import) into the supervisor by scripts/bench-supervisor's heap
// run only: every second, after a full GC, writes process.memoryUsage() to the file named by
// $PHP_FPM_MULTI_HEAP_PROBE, so the heap can be compared before and after many restarts.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env['PHP_FPM_MULTI_HEAP_PROBE'];
const gc = (globalThis as { gc?: () => void }).gc;
if (file !== undefined && gc !== undefined) {
  setInterval(() => {
    gc();
    const { heapUsed, rss } = process.memoryUsage();
    writeFileSync(`${file}.tmp`, JSON.stringify({ atMs: Date.now(), heapUsed, rss }));
    renameSync(`${file}.tmp`, file);
  }, 1000).unref();
}
