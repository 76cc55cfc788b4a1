// The man page (docs/php-fpm-multi.8) lints clean with both linters a Debian system has for it:
// mandoc -T lint with every warning level, and man-db's man --warnings (groff's warnings). A
// missing linter fails the test, naming its Debian package (scripts/setup --with-test-tools).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO, run, show } from '../helpers/openrc.js';

const PAGE = join(REPO, 'docs', 'php-fpm-multi.8');
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', MANPAGER: 'cat', MANWIDTH: '80' };

function requireProgram(program: string, debianPackage: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { env: ENV, stdio: 'pipe' });
  } catch {
    throw new Error(`${program} is missing: install the Debian package ${debianPackage} (scripts/setup --with-test-tools does)`);
  }
}

describe('docs/php-fpm-multi.8', () => {
  test('mandoc -T lint -W all: no message at all', async () => {
    requireProgram('mandoc', 'mandoc');
    const lint = await run('mandoc', ['-T', 'lint', '-W', 'all', PAGE], { env: ENV });
    expect(lint.code, show(lint)).toBe(0);
    expect(lint.output, show(lint)).toBe('');
  });

  test('man --warnings renders it without a warning, with its sections', async () => {
    requireProgram('man', 'man-db');
    requireProgram('groff', 'groff-base');
    const rendered = await run('man', ['--warnings', '-E', 'UTF-8', '-l', PAGE], { env: ENV });
    expect(rendered.code, show(rendered)).toBe(0);
    expect(rendered.stderr, show(rendered)).toBe('');
    for (const heading of ['NAME', 'SYNOPSIS', 'COMMANDS', 'OPTIONS', 'DECLARATION FILE', 'INSTANCE STATES', 'EXIT STATUS', 'FILES', 'SAFETY']) {
      expect(rendered.stdout).toMatch(new RegExp(`^${heading}$`, 'm'));
    }
  });

  test('the linters do report a broken page (the checks above can fail)', async () => {
    requireProgram('mandoc', 'mandoc');
    requireProgram('man', 'man-db');
    const dir = mkdtempSync(join(tmpdir(), 'php-fpm-multi-manpage-'));
    try {
      const broken = join(dir, 'broken.8');
      writeFileSync(broken, readFileSync(PAGE, 'utf8').replace(/^\.SH COMMANDS$/m, '.SHX COMMANDS'));
      expect((await run('mandoc', ['-T', 'lint', '-W', 'all', broken], { env: ENV })).output).toContain('SHX');
      expect((await run('man', ['--warnings', '-l', broken], { env: ENV })).stderr).toMatch(/macro 'SHX' not defined/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
