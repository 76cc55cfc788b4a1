// Where the benchmark harness finds the checkout: its files run compiled from build/bench/…, so
// the checkout is the nearest directory above with package.json.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The nearest directory above `from` (inclusive) that holds package.json. */
export function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (dir === path.dirname(dir)) throw new Error(`no package.json above ${from}`);
  }
}
