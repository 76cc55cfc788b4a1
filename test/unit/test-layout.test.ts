// Every test file belongs to one of the two vitest projects (vitest.config.ts). A test file
// anywhere else under test/ would match neither project's include and silently never run.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const TEST_DIR = fileURLToPath(new URL('..', import.meta.url));
const PROJECT_DIRS = ['unit', 'integration'];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [relative(TEST_DIR, path)] : [];
  });
}

test('every test file is in test/unit or test/integration', () => {
  const files = testFiles(TEST_DIR);
  const stray = files.filter((file) => !PROJECT_DIRS.includes(file.split('/')[0] ?? ''));
  expect(stray, 'move these into test/unit/ or test/integration/ (README, "Development": which one) and fix their relative imports').toEqual([]);
  expect(files.length).toBeGreaterThan(PROJECT_DIRS.length);
});
