// The README's main command: scripts/demo must start real instances, serve through each, and
// leave nothing running.
import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { listProcessesUnder } from '../helpers/fpm.js';

test('scripts/demo starts two real instances, serves a PHP page through each, reloads and stops them', () => {
  const demo = spawnSync('scripts/demo', { encoding: 'utf8', timeout: 300_000 });
  expect(demo.status, demo.stderr).toBe(0);
  expect(demo.stdout).toMatch(/blue: started \(pid \d+\)/);
  expect(demo.stdout).toMatch(/^blue +php8\.2 +running +\d+/m);
  expect(demo.stdout).toMatch(/^green +8\.2 +running +\d+/m);
  expect(demo.stdout.match(/Hello from PHP 8\.2\.\d+ in instance (blue|green)/g)).toHaveLength(4);
  expect(demo.stdout).toMatch(/green: reloaded \(pid \d+ → \d+\)/);
  expect(demo.stdout).toContain('exit status 3');
  expect(listProcessesUnder('/tmp/php-fpm-multi-demo.')).toEqual([]);
});
